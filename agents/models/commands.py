"""Switch commands and the switches they produce."""
import uuid

from django.db import models
from django.db.models import Q

from agents.models.common import PRICE, Mode, _in


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

class SwitchTrigger(models.TextChoices):
    """What the agent says started a switch. v4 labels commands by priority (MANUAL_PRIORITY);
    a label outside this set is stored as `other` (the report keeps the agent's own word)."""
    MANUAL = "manual", "Manual"
    MODEL = "model", "Model (automatic)"
    EMERGENCY = "emergency", "Emergency"
    REBALANCE = "rebalance", "Rebalance"
    SCHEDULED = "scheduled", "Scheduled"
    OTHER = "other", "Other"


# The agent labels a command "manual" from this priority up, "model" below.
MANUAL_PRIORITY = 50


class Command(models.Model):
    """A spot/on-demand switch order for one agent."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="commands")
    target_mode = models.CharField(max_length=16, choices=Mode.choices)
    target_pool = models.ForeignKey("agents.SpotPool", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
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
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="switches")
    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE, related_name="switches")
    command = models.ForeignKey("agents.Command", null=True, blank=True, on_delete=models.SET_NULL, related_name="switches")
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
    trigger_type = models.CharField(max_length=32, choices=SwitchTrigger.choices, default=SwitchTrigger.MANUAL)
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
            models.CheckConstraint(condition=_in("trigger_type", SwitchTrigger), name="switch_trigger_valid"),
        ]
        indexes = [
            models.Index(fields=["client", "-initiated_at"], name="switch_client_time_idx"),
            models.Index(fields=["agent", "-initiated_at"], name="switch_agent_time_idx"),
        ]
