from django.db import models
from django.db.models import Q


class CleanupType(models.TextChoices):
    SNAPSHOTS = "snapshots", "Snapshots"
    AMIS = "amis", "AMIs"
    FULL = "full", "Full"


class CleanupLog(models.Model):
    """One section (snapshots or AMIs) of one cleanup run reported by an agent."""

    id = models.AutoField(primary_key=True)
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="cleanup_logs")
    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE, related_name="cleanup_logs")
    cleanup_type = models.CharField(max_length=16, choices=CleanupType.choices)
    deleted_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    cutoff_date = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    executed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "cleanup_logs"
        ordering = ["-executed_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(cleanup_type__in=[c for c, _ in CleanupType.choices]), name="cleanup_type_valid"
            ),
            # A resent report (same agent, section and timestamp) is the same run, not a new one.
            models.UniqueConstraint(fields=["agent", "cleanup_type", "executed_at"], name="cleanup_one_per_run"),
        ]
        indexes = [
            models.Index(fields=["agent", "-executed_at"], name="cleanup_agent_time_idx"),
            models.Index(fields=["client", "-executed_at"], name="cleanup_client_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.cleanup_type}: {self.deleted_count} deleted, {self.failed_count} failed"
