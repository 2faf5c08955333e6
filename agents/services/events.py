from agents.models import Agent, Severity, SystemEvent
from spotbackend.db.rows import ModelRows

_event_rows = ModelRows(SystemEvent)


def system_event_log(
    *,
    event_type: str,
    message: str,
    severity: str = Severity.INFO,
    agent: Agent | None = None,
    client=None,
    metadata: dict | None = None,
) -> SystemEvent:
    event = SystemEvent(
        event_type=event_type,
        message=message,
        severity=severity,
        agent=agent,
        # The agent's client by id: agent.client would load the row for nothing.
        client_id=client.pk if client is not None else (agent.client_id if agent is not None else None),
        metadata=metadata or {},
    )
    _event_rows.insert([event])  # plain SQL (spotbackend/db/rows.py): every notice of a burst logs one
    return event
