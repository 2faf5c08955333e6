"""Replicas, termination events, system events and decisions."""
import uuid

from django.db import models

from agents.models.common import PRICE, Severity, _in


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
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="replicas")
    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE, related_name="replicas")
    instance_id = models.CharField(max_length=64, blank=True, default="")
    replica_type = models.CharField(max_length=16, choices=ReplicaType.choices)
    parent_instance_id = models.CharField(max_length=64, blank=True, default="")
    pool = models.ForeignKey("agents.SpotPool", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
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
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="termination_events")
    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE, related_name="termination_events")
    instance_id = models.CharField(max_length=64)
    pool = models.ForeignKey("agents.SpotPool", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
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


class SystemEvent(models.Model):
    client = models.ForeignKey("clients.Client", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey("agents.Agent", null=True, blank=True, on_delete=models.CASCADE, related_name="system_events")
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
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="decisions")
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
    command = models.ForeignKey("agents.Command", null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions")
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
