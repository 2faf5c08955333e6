"""The notification outbox: a row written in the transaction of the event it announces, delivered
afterwards by a Celery task (docs/SECURITY.md and README "Notifications")."""
from django.db import models
from django.db.models import Q


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Notification(models.Model):
    client = models.ForeignKey("clients.Client", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32)  # termination_notice, pool_risk_avoid
    text = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # A pending row is due when this has passed; a worker claims it by moving this forward (a lease).
    next_attempt_at = models.DateTimeField()
    # No further attempt after this (NOTIFICATION_RETRY_HOURS after creation; "retry now" allows one).
    retry_until = models.DateTimeField()
    # When the delivery task was last handed to the broker; NULL = never published (broker down).
    published_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "notifications"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[c for c, _ in NotificationStatus.choices]), name="notification_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="notification_due_idx")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"


class NotificationAttempt(models.Model):
    """One delivery attempt and its outcome."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="attempt_log")
    attempted_at = models.DateTimeField()
    success = models.BooleanField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "notification_attempts"
        ordering = ["attempted_at", "id"]
