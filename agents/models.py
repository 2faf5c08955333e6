"""The fleet: agents, their instances, the spot market, commands, switches, replicas, events."""
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

PRICE = {"max_digits": 12, "decimal_places": 6}
# The most replicas of one kind an agent may have: the dashboard's replica_count range and the ceiling
# on live replicas of one type (agents/services/replicas.py).
REPLICA_LIMIT = 5


def _in(field: str, choices) -> Q:
    return Q(**{f"{field}__in": [c for c, _ in choices.choices]})


class Mode(models.TextChoices):
    SPOT = "spot", "Spot"
    ONDEMAND = "ondemand", "On-demand"
    UNKNOWN = "unknown", "Unknown"


class AgentStatus(models.TextChoices):
    ONLINE = "online", "Online"
    DISABLED = "disabled", "Disabled"
    SWITCHING = "switching", "Switching"
    TERMINATING = "terminating", "Terminating"
    OFFLINE = "offline", "Offline"


def heartbeat_cutoff(now: datetime | None = None) -> datetime:
    """Heartbeats older than this are too old: the agent counts as offline (AGENT_HEARTBEAT_TIMEOUT)."""
    return (now or timezone.now()) - timedelta(seconds=settings.AGENT_HEARTBEAT_TIMEOUT)


def agent_alive_q(*, now: datetime | None = None, prefix: str = "") -> Q:
    """The one definition of "alive": not offline, and a heartbeat within AGENT_HEARTBEAT_TIMEOUT.
    `prefix` ("agent__") applies it across a relation. Agent.is_alive is the same rule for one row."""
    return ~Q(**{f"{prefix}status": AgentStatus.OFFLINE}) & Q(
        **{f"{prefix}last_heartbeat_at__gte": heartbeat_cutoff(now)}
    )


class AgentQuerySet(models.QuerySet):
    def alive(self, *, now: datetime | None = None):
        return self.filter(agent_alive_q(now=now))

    def stale(self, *, now: datetime | None = None):
        """Not alive but not yet marked offline: what the sweep turns offline. An agent that never sent
        a heartbeat gets the timeout from its registration."""
        cutoff = heartbeat_cutoff(now)
        return self.exclude(status=AgentStatus.OFFLINE).filter(
            Q(last_heartbeat_at__lt=cutoff) | Q(last_heartbeat_at__isnull=True, registered_at__lt=cutoff)
        )


class Agent(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE, related_name="agents")
    logical_agent_id = models.CharField(max_length=255)
    hostname = models.CharField(max_length=255, blank=True, default="")
    # Denormalised from the primary Instance so that the frequent calls read one row.
    instance_id = models.CharField(max_length=64, blank=True, default="")
    instance_type = models.CharField(max_length=64, blank=True, default="")
    region = models.CharField(max_length=32, blank=True, default="")
    az = models.CharField(max_length=32, blank=True, default="")
    ami_id = models.CharField(max_length=64, blank=True, default="")
    private_ip = models.CharField(max_length=64, blank=True, default="")
    public_ip = models.CharField(max_length=64, blank=True, default="")
    agent_version = models.CharField(max_length=32, blank=True, default="")
    current_mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.UNKNOWN)
    current_pool = models.ForeignKey(
        "agents.SpotPool", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=AgentStatus.choices, default=AgentStatus.ONLINE)
    # Per-agent settings (the dashboard changes them; the agent reads them through its config).
    enabled = models.BooleanField(default=True)
    auto_switch_enabled = models.BooleanField(default=False)
    auto_terminate_enabled = models.BooleanField(default=True)
    manual_replica_enabled = models.BooleanField(default=False)
    replica_count = models.PositiveSmallIntegerField(default=0)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_termination_notice_at = models.DateTimeField(null=True, blank=True)
    last_rebalance_recommendation_at = models.DateTimeField(null=True, blank=True)
    emergency_replica_count = models.PositiveIntegerField(default=0)
    last_cleanup_at = models.DateTimeField(null=True, blank=True)
    registered_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AgentQuerySet.as_manager()

    class Meta:
        db_table = "agents"
        ordering = ["hostname", "id"]
        constraints = [
            models.UniqueConstraint(fields=["client", "logical_agent_id"], name="agent_unique_logical_id"),
            models.CheckConstraint(condition=_in("status", AgentStatus), name="agent_status_valid"),
            models.CheckConstraint(condition=_in("current_mode", Mode), name="agent_mode_valid"),
            models.CheckConstraint(condition=Q(replica_count__lte=REPLICA_LIMIT), name="agent_replica_count_range"),
        ]
        indexes = [models.Index(fields=["status", "last_heartbeat_at"], name="agent_status_hb_idx")]

    def __str__(self) -> str:
        return f"{self.hostname or self.logical_agent_id} ({self.instance_id})"

    def is_alive(self, *, now: datetime | None = None) -> bool:
        """agent_alive_q for this row."""
        hb = self.last_heartbeat_at
        return self.status != AgentStatus.OFFLINE and hb is not None and hb >= heartbeat_cutoff(now)


class InstanceState(models.TextChoices):
    PRIMARY = "primary", "Primary"
    REPLACED = "replaced", "Replaced"
    TERMINATED = "terminated", "Terminated"


class Instance(models.Model):
    """One EC2 instance an agent has run on; the history behind switches and savings."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="instances")
    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE, related_name="instances")
    instance_id = models.CharField(max_length=64)
    instance_type = models.CharField(max_length=64, blank=True, default="")
    region = models.CharField(max_length=32, blank=True, default="")
    az = models.CharField(max_length=32, blank=True, default="")
    ami_id = models.CharField(max_length=64, blank=True, default="")
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.UNKNOWN)
    pool = models.ForeignKey("agents.SpotPool", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=16, choices=InstanceState.choices, default=InstanceState.PRIMARY)
    # True while primary, NULL otherwise: a unique key on (agent, is_primary) gives "exactly one
    # primary per agent" on MySQL/MariaDB, which have no partial unique indexes.
    is_primary = models.BooleanField(null=True, blank=True, default=True, editable=False)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)  # when it stopped being primary
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "instances"
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "instance_id"], name="instance_unique_per_agent"),
            models.UniqueConstraint(fields=["agent", "is_primary"], name="instance_one_primary"),
            models.CheckConstraint(condition=_in("state", InstanceState), name="instance_state_valid"),
            models.CheckConstraint(condition=_in("mode", Mode), name="instance_mode_valid"),
            models.CheckConstraint(
                condition=Q(is_primary__isnull=True) | Q(is_primary=True, state="primary"),
                name="instance_primary_flag_matches_state",
            ),
        ]
        indexes = [
            models.Index(fields=["client", "started_at"], name="instance_client_started_idx"),
            models.Index(fields=["instance_id"], name="instance_ec2_id_idx"),
            # Daily savings of all clients: the instances running on a day, not the whole history.
            models.Index(fields=["ended_at"], name="instance_ended_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.instance_id} ({self.state})"


class RiskRecommendation(models.TextChoices):
    SAFE = "safe", "Safe"
    CAUTION = "caution", "Caution"
    AVOID = "avoid", "Avoid"


class SpotPool(models.Model):
    """A spot capacity pool: one instance type in one availability zone."""

    id = models.CharField(primary_key=True, max_length=100)  # "{instance_type}.{az}"
    instance_type = models.CharField(max_length=64)
    region = models.CharField(max_length=32)
    az = models.CharField(max_length=32)
    # Latest known price and risk, kept on the row so that a failover choice reads one small table.
    latest_price = models.DecimalField(null=True, blank=True, **PRICE)
    latest_price_at = models.DateTimeField(null=True, blank=True)
    risk_score = models.DecimalField(max_digits=5, decimal_places=4, null=True, blank=True)
    # Empty until the risk analysis has rated the pool (agents/services/risk.py is its only writer).
    risk_recommendation = models.CharField(max_length=16, blank=True, default="", choices=RiskRecommendation.choices)
    cooldown_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "spot_pools"
        ordering = ["id"]
        indexes = [models.Index(fields=["instance_type", "region"], name="pool_type_region_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(risk_recommendation="") | _in("risk_recommendation", RiskRecommendation),
                name="pool_risk_recommendation_valid",
            )
        ]

    def __str__(self) -> str:
        return self.id


class SpotPriceSample(models.Model):
    pool = models.ForeignKey(SpotPool, on_delete=models.CASCADE, related_name="price_samples")
    price = models.DecimalField(**PRICE)
    observed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "spot_price_samples"
        ordering = ["-observed_at"]
        constraints = [models.UniqueConstraint(fields=["pool", "observed_at"], name="spot_sample_unique")]
        indexes = [
            # Pool risk sums each pool's last 24 h from the index alone (agents/services/risk.py).
            models.Index(fields=["pool", "observed_at", "price"], name="spot_sample_window_idx"),
            # The retention job deletes by age (agents/services/retention.py).
            models.Index(fields=["observed_at"], name="spot_sample_time_idx"),
        ]


class OnDemandPriceSample(models.Model):
    instance_type = models.CharField(max_length=64)
    region = models.CharField(max_length=32)
    price = models.DecimalField(**PRICE)
    # The agent's own stand-in when the AWS Pricing API fails (v4: exactly 0.1; v3: 3 x mean spot).
    is_fallback = models.BooleanField(default=False)
    observed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "ondemand_price_samples"
        ordering = ["-observed_at"]
        constraints = [
            models.UniqueConstraint(fields=["instance_type", "region", "observed_at"], name="ondemand_sample_unique")
        ]
        indexes = [
            models.Index(fields=["instance_type", "region", "is_fallback", "observed_at"], name="ondemand_lookup_idx"),
            models.Index(fields=["observed_at"], name="ondemand_sample_time_idx"),
        ]


class CommandStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SUPERSEDED = "superseded", "Superseded"
    EXPIRED = "expired", "Expired"


class CommandSource(models.TextChoices):
    DASHBOARD = "dashboard", "Dashboard"
    PROMOTE = "promote", "Promotion of a replica"
    TERMINATION = "termination", "Termination notice failover"
    REBALANCE = "rebalance", "Rebalance recommendation"
    # Written by earlier versions (staff and automatic commands); kept so that old rows stay valid.
    ADMIN = "admin", "Admin"
    AUTO = "auto", "Automatic"

# The agent labels a command "manual" from this priority up, "model" below.
MANUAL_PRIORITY = 50


class Command(models.Model):
    """A spot/on-demand switch order for one agent."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="commands")
    target_mode = models.CharField(max_length=16, choices=Mode.choices)
    target_pool = models.ForeignKey(SpotPool, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    priority = models.PositiveSmallIntegerField(default=MANUAL_PRIORITY)
    status = models.CharField(max_length=16, choices=CommandStatus.choices, default=CommandStatus.PENDING)
    # True while pending or delivered, NULL once closed: unique (agent, is_open) = one open command.
    is_open = models.BooleanField(null=True, blank=True, default=True, editable=False)
    source = models.CharField(max_length=32, choices=CommandSource.choices, default=CommandSource.DASHBOARD)
    reason = models.TextField(blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    delivered_instance_id = models.CharField(max_length=64, blank=True, default="")
    completed_at = models.DateTimeField(null=True, blank=True)
    success = models.BooleanField(null=True, blank=True)
    message = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "commands"
        ordering = ["-priority", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "is_open"], name="command_one_open_per_agent"),
            models.CheckConstraint(condition=_in("status", CommandStatus), name="command_status_valid"),
            models.CheckConstraint(condition=_in("source", CommandSource), name="command_source_valid"),
            models.CheckConstraint(condition=Q(target_mode__in=["spot", "ondemand"]), name="command_mode_valid"),
            models.CheckConstraint(
                condition=Q(is_open__isnull=True, status__in=["succeeded", "failed", "superseded", "expired"])
                | Q(is_open=True, status__in=["pending", "delivered"]),
                name="command_open_flag_matches_status",
            ),
        ]
        indexes = [models.Index(fields=["agent", "status", "created_at"], name="command_agent_status_idx")]

    def __str__(self) -> str:
        return f"{self.target_mode} {self.target_pool_id or ''} ({self.status})"


class Switch(models.Model):
    """A completed move of an agent from one instance to another, as the agent reported it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="switches")
    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE, related_name="switches")
    command = models.ForeignKey(Command, null=True, blank=True, on_delete=models.SET_NULL, related_name="switches")
    old_instance_id = models.CharField(max_length=64, blank=True, default="")
    new_instance_id = models.CharField(max_length=64, blank=True, default="")
    old_mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.UNKNOWN)
    new_mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.UNKNOWN)
    old_az = models.CharField(max_length=32, blank=True, default="")
    new_az = models.CharField(max_length=32, blank=True, default="")
    old_pool_id = models.CharField(max_length=100, blank=True, default="")
    new_pool_id = models.CharField(max_length=100, blank=True, default="")
    on_demand_price = models.DecimalField(null=True, blank=True, **PRICE)
    old_price = models.DecimalField(null=True, blank=True, **PRICE)
    new_price = models.DecimalField(null=True, blank=True, **PRICE)
    savings_impact = models.DecimalField(default=0, **PRICE)  # USD/h: old hourly price - new hourly price
    # The agent's own label ("manual", "model", ...): an open set in the wire contract, so free text.
    trigger_type = models.CharField(max_length=32, default="manual")
    initiated_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    report = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "switches"
        ordering = ["-initiated_at"]
        verbose_name_plural = "switches"
        constraints = [
            models.CheckConstraint(condition=_in("old_mode", Mode), name="switch_old_mode_valid"),
            models.CheckConstraint(condition=_in("new_mode", Mode), name="switch_new_mode_valid"),
        ]
        indexes = [
            models.Index(fields=["client", "-initiated_at"], name="switch_client_time_idx"),
            models.Index(fields=["agent", "-initiated_at"], name="switch_agent_time_idx"),
        ]


class ReplicaType(models.TextChoices):
    EMERGENCY = "emergency", "Emergency"
    MANUAL = "manual", "Manual"


class ReplicaStatus(models.TextChoices):
    LAUNCHING = "launching", "Launching"
    SYNCING = "syncing", "Syncing"
    READY = "ready", "Ready"
    PROMOTING = "promoting", "Promoting"
    PROMOTED = "promoted", "Promoted"
    TERMINATED = "terminated", "Terminated"


class Replica(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="replicas")
    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE, related_name="replicas")
    instance_id = models.CharField(max_length=64, blank=True, default="")
    replica_type = models.CharField(max_length=16, choices=ReplicaType.choices)
    parent_instance_id = models.CharField(max_length=64, blank=True, default="")
    pool = models.ForeignKey(SpotPool, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=ReplicaStatus.choices, default=ReplicaStatus.LAUNCHING)
    hourly_cost = models.DecimalField(null=True, blank=True, **PRICE)
    termination_event = models.ForeignKey(
        "agents.TerminationEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="replicas"
    )
    status_reason = models.TextField(blank=True, default="")
    # The switch command that carries out the promotion of a replica the agent never launched (issue 9).
    promote_command = models.ForeignKey(
        "agents.Command", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    terminated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "replicas"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=_in("replica_type", ReplicaType), name="replica_type_valid"),
            models.CheckConstraint(condition=_in("status", ReplicaStatus), name="replica_status_valid"),
        ]
        indexes = [
            models.Index(fields=["agent", "status"], name="replica_agent_status_idx"),
            models.Index(fields=["client", "-created_at"], name="replica_client_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.replica_type} replica {self.instance_id or self.id} ({self.status})"


class TerminationEventType(models.TextChoices):
    TERMINATION_NOTICE = "termination_notice", "Termination notice"
    REBALANCE_RECOMMENDATION = "rebalance_recommendation", "Rebalance recommendation"


class TerminationEventStatus(models.TextChoices):
    DETECTED = "detected", "Detected"
    HANDLING = "handling", "Handling"
    RESOLVED = "resolved", "Resolved"
    FAILED = "failed", "Failed"


class TerminationEvent(models.Model):
    """One spot interruption notice (or rebalance recommendation) for one instance."""

    id = models.AutoField(primary_key=True)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="termination_events")
    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE, related_name="termination_events")
    instance_id = models.CharField(max_length=64)
    pool = models.ForeignKey(SpotPool, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    event_type = models.CharField(max_length=32, choices=TerminationEventType.choices)
    # Identifies the notice: the announced termination time, or a recommendation's first sighting.
    notice_key = models.CharField(max_length=64, default="", blank=True)
    action_taken = models.CharField(max_length=100, blank=True, default="")
    emergency_replica = models.ForeignKey(
        Replica, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_column="emergency_replica_id"
    )
    termination_time = models.DateTimeField(null=True, blank=True)
    detected_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(null=True, blank=True)
    notice_count = models.PositiveIntegerField(default=1)
    resolved_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=TerminationEventStatus.choices, default=TerminationEventStatus.DETECTED
    )
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "termination_events"
        ordering = ["-detected_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "instance_id", "event_type", "notice_key"], name="termination_event_one_per_notice"
            ),
            models.CheckConstraint(condition=_in("event_type", TerminationEventType), name="termination_type_valid"),
            models.CheckConstraint(condition=_in("status", TerminationEventStatus), name="termination_status_valid"),
        ]
        indexes = [
            models.Index(fields=["client", "-detected_at"], name="termination_client_time_idx"),
            models.Index(fields=["pool", "event_type", "detected_at"], name="termination_pool_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.instance_id} ({self.status})"


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
    CRITICAL = "critical", "Critical"


class SystemEvent(models.Model):
    client = models.ForeignKey("clients.Client", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.CASCADE, related_name="system_events")
    event_type = models.CharField(max_length=64)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.INFO)
    message = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "system_events"
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=_in("severity", Severity), name="system_event_severity_valid")]
        indexes = [models.Index(fields=["client", "-created_at"], name="sysevent_client_time_idx")]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.event_type}: {self.message[:60]}"


class PoolRiskAnalysis(models.Model):
    pool = models.ForeignKey(SpotPool, on_delete=models.CASCADE, related_name="risk_analyses")
    analyzed_at = models.DateTimeField()
    risk_score = models.DecimalField(max_digits=5, decimal_places=4)
    volatility = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    avg_price_24h = models.DecimalField(null=True, blank=True, **PRICE)
    min_price_24h = models.DecimalField(null=True, blank=True, **PRICE)
    max_price_24h = models.DecimalField(null=True, blank=True, **PRICE)
    interruption_frequency = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    recommendation = models.CharField(max_length=16, choices=RiskRecommendation.choices)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "pool_risk_analysis"
        ordering = ["-analyzed_at"]
        verbose_name_plural = "pool risk analyses"
        constraints = [
            models.UniqueConstraint(fields=["pool", "analyzed_at"], name="pool_risk_unique_run"),
            models.CheckConstraint(condition=_in("recommendation", RiskRecommendation), name="pool_risk_rec_valid"),
            models.CheckConstraint(condition=Q(risk_score__gte=0, risk_score__lte=1), name="pool_risk_score_range"),
        ]


class DecisionKind(models.TextChoices):
    TERMINATION = "termination", "Termination notice"
    REBALANCE = "rebalance", "Rebalance recommendation"
    FAILOVER_POOL = "failover_pool", "Failover pool choice"
    AUTO_SWITCH = "auto_switch", "Automatic switch"
    EXPIRY = "expiry", "Expiry"
    PROMOTION = "promotion", "Promotion"


class Decision(models.Model):
    """One automatic decision, with its inputs and reason in typed columns (issue 9, item 8): what the
    server decided, on what, and why. `dry_run`: the client's dry-run was on, so the agent was told
    nothing: the decision is what the server *would have* done."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE, related_name="decisions")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="decisions")
    kind = models.CharField(max_length=16, choices=DecisionKind.choices)
    action = models.CharField(max_length=64)
    dry_run = models.BooleanField(default=False)
    reason = models.TextField(blank=True, default="")
    # Inputs: the instance and pool concerned, the target chosen (with its price and risk then), the deadline.
    instance_id = models.CharField(max_length=64, blank=True, default="")
    from_pool_id = models.CharField(max_length=100, blank=True, default="")
    target_mode = models.CharField(max_length=16, blank=True, default="")
    target_pool_id = models.CharField(max_length=100, blank=True, default="")
    target_price = models.DecimalField(null=True, blank=True, **PRICE)
    target_risk = models.CharField(max_length=16, blank=True, default="")
    deadline = models.DateTimeField(null=True, blank=True)
    # What it concerned or produced.
    termination_event = models.ForeignKey(
        TerminationEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions"
    )
    replica = models.ForeignKey(Replica, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions")
    command = models.ForeignKey(Command, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "decisions"
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=_in("kind", DecisionKind), name="decision_kind_valid")]
        indexes = [
            models.Index(fields=["client", "-created_at"], name="decision_client_time_idx"),
            models.Index(fields=["agent", "-created_at"], name="decision_agent_time_idx"),
        ]

    @property
    def summary(self) -> str:
        target = self.target_pool_id or self.target_mode
        text = f"{self.get_kind_display()}: {self.action.replace('_', ' ')}" + (f" -> {target}" if target else "")
        return f"Would have: {text} (dry run)" if self.dry_run else text

    def __str__(self) -> str:
        return self.summary
