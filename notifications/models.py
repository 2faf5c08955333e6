"""The notification outbox: a row written in the transaction of the event it announces, delivered
afterwards by a Celery task (docs/SECURITY.md and README "Notifications"). A row is either a message to
the operator's server-wide webhook (`endpoint` NULL) or one delivery of a client's event to one of the
client's own webhook endpoints (issue 20; docs/ARCHITECTURE.md "Webhooks")."""
import uuid

from django.db import models
from django.db.models import Q


class EventType(models.TextChoices):
    """What a client's webhook endpoint can subscribe to (docs/API.md "Webhooks")."""

    TERMINATION_NOTICE = "termination.notice", "Termination notice"
    REBALANCE_RECOMMENDATION = "rebalance.recommendation", "Rebalance recommendation"
    REPLICA_CREATED = "replica.created", "Emergency replica created"
    REPLICA_FAILED = "replica.failed", "Emergency replica failed"
    SWITCH_AUTOMATIC = "switch.automatic", "Automatic switch"
    AGENT_OFFLINE = "agent.offline", "Agent gone offline"
    POOL_RISK_ALERT = "pool.risk_alert", "Pool risk alert"


# Sent by "send a test event" only; no endpoint subscribes to it.
TEST_EVENT_TYPE = "webhook.test"


class WebhookFormat(models.TextChoices):
    # Standard Webhooks: JSON {type, id, timestamp, data}, signed with webhook-id/-timestamp/-signature.
    STANDARD = "standard", "Standard Webhooks (signed JSON)"
    # Slack-compatible {"text": ...} (also signed with the same headers; Slack ignores them).
    SLACK = "slack", "Slack-compatible text"


class WebhookEndpoint(models.Model):
    """A client's own webhook endpoint. The secret is needed to sign every delivery, so it is kept (never
    shown again after creation or rotation: the admin and the API show only its prefix)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=500, blank=True, default="")
    events = models.JSONField(default=list, blank=True)  # EventType values; empty = none
    format = models.CharField(max_length=16, choices=WebhookFormat.choices, default=WebhookFormat.STANDARD)
    enabled = models.BooleanField(default=True)
    secret = models.CharField(max_length=100, editable=False)
    # After a rotation the previous secret also signs (both signatures sent) until this time.
    previous_secret = models.CharField(max_length=100, blank=True, default="", editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # First failure of the current run of failures (NULL after a success); a day of it disables the endpoint.
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "webhook_endpoints"
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(format__in=["standard", "slack"]), name="webhook_format_valid"),
        ]

    def __str__(self) -> str:
        from notifications.http import url_redacted

        return f"{url_redacted(self.url)} ({self.client_id})"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Notification(models.Model):
    client = models.ForeignKey("clients.Client", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    # NULL: the operator's server-wide webhook (TERMINATION_NOTIFICATION_WEBHOOK); else one delivery of a
    # client's event to one of its endpoints.
    endpoint = models.ForeignKey(WebhookEndpoint, null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="deliveries")
    kind = models.CharField(max_length=32)  # termination_notice, pool_risk_avoid; an EventType for an endpoint
    # The event's stable id (`evt_...`): the same in every delivery and redelivery of one event.
    event_id = models.CharField(max_length=40, blank=True, default="", db_index=True)
    text = models.TextField()
    # The JSON body of a standard delivery ({type, id, timestamp, data}).
    payload = models.JSONField(default=dict, blank=True)
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
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
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
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="notification_due_idx"),
            models.Index(fields=["endpoint", "-created_at"], name="notification_endpoint_idx"),
        ]

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
