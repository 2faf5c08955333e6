"""The notification outbox (README "Notifications"): enqueue inside the event's transaction, publish
after commit without ever failing the caller, deliver with backoff until NOTIFICATION_RETRY_HOURS,
then mark failed with a system event. Every attempt is stored.

The same outbox carries the deliveries to clients' own webhook endpoints (notifications/services/webhooks.py)."""
import logging
import time
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min
from django.utils import timezone

from notifications.http import url_redacted
from notifications.models import Notification, NotificationAttempt, NotificationStatus
from notifications.services.publish import notification_publish, notification_publish_after_commit

logger = logging.getLogger(__name__)

# Backoff between attempts: 5 s, 10 s, 20 s ... doubling, at most an hour apart.
BACKOFF_BASE_SECONDS = 5
BACKOFF_MAX_SECONDS = 3600
# A claimed row is not claimed again for this long (longer than one webhook timeout).
CLAIM_LEASE = timedelta(seconds=60)
# A pending row overdue by this much was never published or its task was lost: the sweep re-sends it.
SWEEP_GRACE = timedelta(seconds=30)
SWEEP_BATCH = 500


def backoff_seconds(attempts: int) -> int:
    return min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS)


def notification_enqueue(*, kind: str, text: str, client=None, client_id=None,
                         metadata: dict | None = None) -> Notification | None:
    """Write one notification in the caller's transaction; publish its delivery after commit.
    Nothing is written when no webhook is configured. `client_id` instead of `client` when only the id
    is at hand."""
    if not settings.TERMINATION_NOTIFICATION_WEBHOOK:
        return None
    now = timezone.now()
    notification = Notification.objects.create(
        kind=kind, text=text, client_id=client.pk if client is not None else client_id, metadata=metadata or {},
        next_attempt_at=now,
        retry_until=now + timedelta(hours=settings.NOTIFICATION_RETRY_HOURS), created_at=now,
    )
    transaction.on_commit(lambda: notification_publish_after_commit(notification_id=notification.pk), robust=True)
    return notification


def _post(text: str) -> tuple[bool, int | None, str]:
    """The operator's server-wide webhook. An error names only the URL's scheme and host: the path of
    a Slack-style URL is its secret, and errors are stored and shown in the admin."""
    from agents.notifications import webhook_post

    shown = url_redacted(settings.TERMINATION_NOTIFICATION_WEBHOOK)
    try:
        if not webhook_post(text=text):
            return False, None, "No webhook configured (TERMINATION_NOTIFICATION_WEBHOOK is empty)."
    except requests.HTTPError as exc:
        code = exc.response.status_code if exc.response is not None else None
        return False, code, f"HTTP {code} from {shown}"
    except requests.RequestException as exc:
        return False, None, f"{type(exc).__name__} sending to {shown}"
    return True, 200, ""


def notification_deliver(*, notification_id: int, now: datetime | None = None) -> dict:
    """One delivery attempt, if the row is pending and due. Returns the outcome and, when another
    attempt is planned, `retry_in` seconds."""
    from agents.models import Severity
    from agents.services.events import system_event_log

    now = now or timezone.now()
    claimed = Notification.objects.filter(
        pk=notification_id, status=NotificationStatus.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + CLAIM_LEASE)
    if not claimed:
        return {"id": notification_id, "status": "skipped"}  # sent, failed, not due or claimed elsewhere
    notification = Notification.objects.select_related("endpoint").get(pk=notification_id)
    if notification.endpoint_id is not None:
        from notifications.services.webhooks import endpoint_deliver

        return endpoint_deliver(notification=notification, now=now)
    started = time.monotonic()
    ok, status_code, error = _post(notification.text)
    duration_ms = int((time.monotonic() - started) * 1000)
    done = timezone.now() if now is None else now
    retry_in = None
    with transaction.atomic():
        notification = Notification.objects.select_for_update().get(pk=notification_id)
        NotificationAttempt.objects.create(notification=notification, attempted_at=done, success=ok,
                                           status_code=status_code, error=error, duration_ms=duration_ms)
        notification.attempts += 1
        notification.last_error = error
        notification.last_status_code = status_code
        if ok:
            notification.status = NotificationStatus.SENT
            notification.sent_at = done
        else:
            delay = backoff_seconds(notification.attempts)
            if done + timedelta(seconds=delay) > notification.retry_until:
                notification.status = NotificationStatus.FAILED
                notification.failed_at = done
                system_event_log(
                    event_type="notification_failed",
                    severity=Severity.ERROR,
                    client=notification.client,
                    message=f"Notification #{notification.pk} ({notification.kind}) failed after "
                    f"{notification.attempts} attempt(s): {error[:300]}",
                    metadata={"notification_id": notification.pk, "kind": notification.kind},
                )
                logger.error("Notification %s failed for good after %s attempts: %s",
                             notification.pk, notification.attempts, error)
            else:
                notification.next_attempt_at = done + timedelta(seconds=delay)
                retry_in = delay
        notification.save()
    return {"id": notification_id, "status": notification.status, "attempts": notification.attempts,
            "retry_in": retry_in}


def notifications_publish_due(*, now: datetime | None = None) -> int:
    """Re-send every pending notification overdue by SWEEP_GRACE: never published (broker down at
    commit time) or whose delayed task was lost. A duplicate is harmless (`notification_deliver` claims)."""
    now = now or timezone.now()
    due = list(
        Notification.objects.filter(status=NotificationStatus.PENDING, next_attempt_at__lte=now - SWEEP_GRACE)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    return sum(notification_publish(notification_id=pk) for pk in due)


def notifications_retry_now(*, notification_ids, now: datetime | None = None) -> int:
    """Staff's "retry now": one more attempt, at once, for each failed notification."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            Notification.objects.select_for_update()
            .filter(pk__in=list(notification_ids), status=NotificationStatus.FAILED)
            .values_list("pk", flat=True)
        )
        Notification.objects.filter(pk__in=ids).update(
            status=NotificationStatus.PENDING, next_attempt_at=now, retry_until=now, failed_at=None
        )
        for pk in ids:
            transaction.on_commit(lambda pk=pk: notification_publish_after_commit(notification_id=pk), robust=True)
    return len(ids)


def outbox_metrics_snapshot(*, now: datetime | None = None) -> dict:
    """The outbox's gauges for /metrics: pending, failed, the oldest pending notification's age."""
    from ops.services import snapshot_store

    now = now or timezone.now()
    counts = dict(Notification.objects.order_by().filter(status__in=[NotificationStatus.PENDING,
                                                                      NotificationStatus.FAILED])
                  .values_list("status").annotate(n=Count("pk")))
    pending = Notification.objects.filter(status=NotificationStatus.PENDING)
    oldest = pending.aggregate(oldest=Min("created_at"))["oldest"]
    values = {
        "pending": counts.get(NotificationStatus.PENDING, 0),
        "failed": counts.get(NotificationStatus.FAILED, 0),
        "oldest_pending_age_seconds": max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
    }
    snapshot_store("outbox", [(f"notification_outbox_{k}", {}, v) for k, v in values.items()], now=now)
    return values
