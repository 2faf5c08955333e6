"""The fleet: agents, their instances, the spot market, commands, switches, replicas, events.
One module per part (each under ~300 lines); everything is importable from `agents.models`."""
from agents.models.common import (  # noqa: F401
    PRICE,
    REPLICA_LIMIT,
    _in,
    Mode,
    Severity,
)
from agents.models.fleet import (  # noqa: F401
    AgentStatus,
    CONFIG_FIELDS,
    heartbeat_cutoff,
    agent_alive_q,
    AgentQuerySet,
    Agent,
    InstanceState,
    Instance,
)
from agents.models.market import (  # noqa: F401
    RiskRecommendation,
    SpotPool,
    SpotPriceSample,
    OnDemandPriceSample,
    PoolRiskAnalysis,
)
from agents.models.commands import (  # noqa: F401
    CommandStatus,
    CommandSource,
    SwitchTrigger,
    MANUAL_PRIORITY,
    Command,
    Switch,
)
from agents.models.interruptions import (  # noqa: F401
    ReplicaType,
    ReplicaStatus,
    Replica,
    TerminationEventType,
    TerminationEventStatus,
    TerminationEvent,
    SystemEvent,
    DecisionKind,
    Decision,
)
