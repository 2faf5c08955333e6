"""Agents and their instances."""
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from agents.models.common import REPLICA_LIMIT, Mode, _in


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


# What the agent's config call answers of its row (docs/API.md §1.3).
CONFIG_FIELDS = ("enabled", "auto_switch_enabled", "auto_terminate_enabled", "manual_replica_enabled", "replica_count")


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
