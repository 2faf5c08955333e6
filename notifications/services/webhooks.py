"""Clients' own webhook endpoints (issue 20; docs/ARCHITECTURE.md "Webhooks"): manage them, emit a
client's events to them as outbox rows in the event's transaction, and deliver one row: signed the
Standard Webhooks way, retried on ENDPOINT_RETRY_SCHEDULE (Retry-After honoured), sent only to checked
public addresses (notifications/http.py), the endpoint disabled on 410 or after a day of failures."""
import json
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from notifications.http import (
    SendResult,
    UnsafeTarget,
    secret_new,
    signed_headers,
    slack_escape,
    url_check,
    url_redacted,
    webhook_send,
)
from notifications.models import (
    TEST_EVENT_TYPE,
    EventType,
    Notification,
    NotificationAttempt,
    NotificationStatus,
    WebhookEndpoint,
    WebhookFormat,
)
from notifications.services.publish import notification_publish_after_commit
from spotbackend.exceptions import InvalidInput


# Seconds before each attempt of a delivery (Standard Webhooks' schedule, about a day in all): the
# first at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; after the last one it has failed.
ENDPOINT_RETRY_SCHEDULE = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
# A Retry-After longer than this is capped (a receiver cannot park a delivery for ever).
RETRY_AFTER_MAX_SECONDS = 36000
ENDPOINTS_PER_CLIENT_MAX = 20
DELIVERIES_LIST_MAX = 100


class EndpointLimitReached(InvalidInput):
    default_message = "Too many webhook endpoints."


def endpoint_url_validate(*, url: str) -> str:
    """At creation and change: https (http only with WEBHOOK_ALLOW_HTTP), no credentials, and a literal
    address only when public (a host name is checked after resolution at every send)."""
    try:
        url_check(url)
    except UnsafeTarget as exc:
        raise InvalidInput(str(exc), fields={"url": str(exc)}) from None
    return url


def _events_clean(events) -> list[str]:
    return sorted({str(e) for e in events or []} & set(EventType.values))


@transaction.atomic
def webhook_endpoint_create(*, client, url: str, events: list[str], description: str = "",
                            format: str = WebhookFormat.STANDARD, enabled: bool = True) -> WebhookEndpoint:
    """A new endpoint with its own secret (the caller shows it this once)."""
    from clients.models import Client

    Client.objects.select_for_update().filter(pk=client.pk).first()  # one count at a time per client
    if WebhookEndpoint.objects.filter(client=client).count() >= ENDPOINTS_PER_CLIENT_MAX:
        raise EndpointLimitReached(f"A client has at most {ENDPOINTS_PER_CLIENT_MAX} webhook endpoints.")
    endpoint_url_validate(url=url)
    return WebhookEndpoint.objects.create(client=client, url=url, events=_events_clean(events),
                                          description=description, format=format, enabled=enabled,
                                          secret=secret_new())


ENDPOINT_CHANGEABLE = ("url", "events", "description", "format", "enabled")


@transaction.atomic
def webhook_endpoint_update(*, endpoint: WebhookEndpoint, changes: dict) -> WebhookEndpoint:
    """Change what is given; enabling again clears the reason it was disabled and its failure run."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if "url" in changes:
        endpoint.url = endpoint_url_validate(url=changes["url"])
    if "events" in changes:
        endpoint.events = _events_clean(changes["events"])
    for name in ("description", "format"):
        if name in changes:
            setattr(endpoint, name, changes[name])
    if "enabled" in changes:
        if changes["enabled"] and not endpoint.enabled:
            endpoint.disabled_reason, endpoint.disabled_at, endpoint.failing_since = "", None, None
        endpoint.enabled = bool(changes["enabled"])
    endpoint.save()
    return endpoint


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint and its deliveries (pending ones are never sent)."""
    endpoint.delete()


# The previous secret keeps signing this long after a rotation (docs/SECURITY.md).
SECRET_ROTATION_OVERLAP = timedelta(hours=24)


@transaction.atomic
def webhook_endpoint_secret_rotate(*, endpoint: WebhookEndpoint, overlap: timedelta = SECRET_ROTATION_OVERLAP,
                                   now: datetime | None = None) -> WebhookEndpoint:
    """A new secret; during `overlap` every delivery carries both signatures (space-separated)."""
    now = now or timezone.now()
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + overlap
    endpoint.secret = secret_new()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    return endpoint


def _signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    secrets_ = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        secrets_.append(endpoint.previous_secret)
    return secrets_


EVENT_TITLES = {
    EventType.TERMINATION_NOTICE: ":warning: Spot termination notice",
    EventType.REBALANCE_RECOMMENDATION: ":information_source: Rebalance recommendation",
    EventType.REPLICA_CREATED: ":white_check_mark: Emergency replica created",
    EventType.REPLICA_FAILED: ":x: Emergency replica failed",
    EventType.SWITCH_AUTOMATIC: ":arrows_counterclockwise: Automatic switch queued",
    EventType.AGENT_OFFLINE: ":red_circle: Agent gone offline",
    EventType.POOL_RISK_ALERT: ":warning: Spot pool rated AVOID",
    TEST_EVENT_TYPE: ":bell: Test event",
}


def event_text(*, event_type: str, data: dict) -> str:
    """The Slack form of an event: a fixed title, then one `key: value` line per field, each value
    escaped (slack_escape), so nothing an agent reported can ping, link or add a line."""
    lines = [EVENT_TITLES.get(event_type, event_type)]
    for key, value in data.items():
        if isinstance(value, (dict, list)):
            continue
        lines.append(f"{key}: {slack_escape(value)}")
    return "\n".join(lines)


def event_id_new() -> str:
    return "evt_" + uuid.uuid4().hex


def _endpoints_for(*, client_ids, event_type: str) -> list[WebhookEndpoint]:
    # Subscriptions filtered here, not in SQL: JSON containment differs between MariaDB and SQLite.
    rows = WebhookEndpoint.objects.filter(client_id__in=list(client_ids), enabled=True).only(
        "id", "client_id", "events")
    return [e for e in rows if event_type in (e.events or [])]


def _delivery_enqueue(*, endpoint_id, client_id, event_type: str, event_id: str, payload: dict, text: str,
                      now: datetime, metadata: dict | None = None) -> Notification:
    schedule_total = timedelta(seconds=sum(ENDPOINT_RETRY_SCHEDULE) + RETRY_AFTER_MAX_SECONDS)
    row = Notification.objects.create(
        endpoint_id=endpoint_id, client_id=client_id, kind=event_type, event_id=event_id, payload=payload,
        text=text, metadata=metadata or {}, next_attempt_at=now, retry_until=now + schedule_total, created_at=now,
    )
    transaction.on_commit(lambda: notification_publish_after_commit(notification_id=row.pk), robust=True)
    return row


def webhook_event_emit(*, event_type: str, data: dict, client_id=None, client_ids=None,
                       now: datetime | None = None) -> int:
    """One event of a client (or of several: the same event for each, e.g. a pool's risk alert to the
    clients with agents in it) to every enabled endpoint of that client subscribed to it: an outbox row
    each, in the caller's transaction, sent after commit. Returns the number of deliveries queued."""
    ids = {client_id} if client_id is not None else set(client_ids or ())
    ids.discard(None)
    if not ids:
        return 0
    now = now or timezone.now()
    endpoints = _endpoints_for(client_ids=ids, event_type=event_type)
    text = event_text(event_type=event_type, data=data) if endpoints else ""
    event_ids: dict = {}
    for endpoint in endpoints:
        # One event id per client's event: every endpoint of the client and every retry share it.
        event_id = event_ids.setdefault(endpoint.client_id, event_id_new())
        payload = {"type": event_type, "id": event_id, "timestamp": now.isoformat().replace("+00:00", "Z"),
                   "data": data}
        _delivery_enqueue(endpoint_id=endpoint.pk, client_id=endpoint.client_id, event_type=event_type,
                          event_id=event_id, payload=payload, text=text, now=now)
    return len(endpoints)


def webhook_events_emit(*, event_type: str, items: list[tuple], now: datetime | None = None) -> int:
    """Many events at once, `items` = [(client_id, data)], with one query for the endpoints."""
    now = now or timezone.now()
    endpoints = _endpoints_for(client_ids={c for c, _ in items if c is not None}, event_type=event_type)
    by_client: dict = {}
    for endpoint in endpoints:
        by_client.setdefault(endpoint.client_id, []).append(endpoint)
    queued = 0
    for client_id, data in items:
        targets = by_client.get(client_id, [])
        if not targets:
            continue
        event_id = event_id_new()
        payload = {"type": event_type, "id": event_id, "timestamp": now.isoformat().replace("+00:00", "Z"),
                   "data": data}
        text = event_text(event_type=event_type, data=data)
        for endpoint in targets:
            _delivery_enqueue(endpoint_id=endpoint.pk, client_id=client_id, event_type=event_type,
                              event_id=event_id, payload=payload, text=text, now=now)
            queued += 1
    return queued


@transaction.atomic
def webhook_endpoint_test(*, endpoint: WebhookEndpoint, now: datetime | None = None) -> Notification:
    """A `webhook.test` event to this endpoint only, subscribed or not, enabled or not (one attempt)."""
    now = now or timezone.now()
    event_id = event_id_new()
    data = {"message": "Test event from spotbackend", "endpoint_id": str(endpoint.pk)}
    payload = {"type": TEST_EVENT_TYPE, "id": event_id, "timestamp": now.isoformat().replace("+00:00", "Z"),
               "data": data}
    return _delivery_enqueue(endpoint_id=endpoint.pk, client_id=endpoint.client_id, event_type=TEST_EVENT_TYPE,
                             event_id=event_id, payload=payload, text=event_text(event_type=TEST_EVENT_TYPE, data=data),
                             now=now, metadata={"test": True})


@transaction.atomic
def webhook_delivery_redeliver(*, delivery: Notification, now: datetime | None = None) -> Notification:
    """Send the same event (same id, same body) again as a new delivery, with its own attempts."""
    now = now or timezone.now()
    endpoint = delivery.endpoint
    if not endpoint.enabled and not delivery.metadata.get("test"):
        raise InvalidInput("The endpoint is disabled: enable it before redelivering.")
    return _delivery_enqueue(endpoint_id=endpoint.pk, client_id=delivery.client_id, event_type=delivery.kind,
                             event_id=delivery.event_id, payload=delivery.payload, text=delivery.text, now=now,
                             metadata={**delivery.metadata, "redelivery_of": delivery.pk})


def _delivery_body(notification: Notification, endpoint: WebhookEndpoint) -> bytes:
    if endpoint.format == WebhookFormat.SLACK:
        document = {"text": notification.text}
    else:
        document = notification.payload
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _endpoint_attempt(notification: Notification, now: datetime):
    endpoint = notification.endpoint
    if not endpoint.enabled and not notification.metadata.get("test"):
        return SendResult(ok=False, error="The endpoint is disabled."), True
    body = _delivery_body(notification, endpoint)
    timestamp = int(now.timestamp())
    headers = signed_headers(secrets_=_signing_secrets(endpoint, now), msg_id=notification.event_id,
                             timestamp=timestamp, body=body)
    return webhook_send(url=endpoint.url, body=body, headers=headers), False


def _endpoint_disable(*, endpoint: WebhookEndpoint, reason: str, now: datetime) -> None:
    """Disable the endpoint and tell the client: a system event on its dashboard API (GET .../events)."""
    from agents.models import Severity
    from agents.services.events import system_event_log

    endpoint.enabled = False
    endpoint.disabled_reason = reason[:300]
    endpoint.disabled_at = now
    endpoint.save(update_fields=["enabled", "disabled_reason", "disabled_at", "updated_at"])
    system_event_log(
        event_type="webhook_endpoint_disabled", severity=Severity.ERROR, client=endpoint.client,
        message=f"Webhook endpoint {url_redacted(endpoint.url)} ({endpoint.pk}) disabled: {reason}"[:1000],
        metadata={"endpoint_id": str(endpoint.pk), "reason": reason[:300]},
    )


def _endpoint_outcome(*, notification: Notification, result, final: bool, done: datetime) -> int | None:
    """Apply one endpoint attempt's outcome to the row (locked) and its endpoint; the seconds until the
    next attempt, or None."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=notification.endpoint_id)
    is_test = bool(notification.metadata.get("test"))
    if result.ok:
        notification.status = NotificationStatus.SENT
        notification.sent_at = done
        if endpoint.failing_since is not None and not is_test:
            endpoint.failing_since = None
            endpoint.save(update_fields=["failing_since", "updated_at"])
        return None
    gone = result.status_code == 410
    if not is_test and endpoint.enabled:
        if gone:
            _endpoint_disable(endpoint=endpoint, reason="the receiver answered 410 Gone", now=done)
        elif endpoint.failing_since is None:
            endpoint.failing_since = done
            endpoint.save(update_fields=["failing_since", "updated_at"])
        elif done - endpoint.failing_since >= timedelta(hours=settings.WEBHOOK_DISABLE_AFTER_HOURS):
            _endpoint_disable(endpoint=endpoint, reason=f"every delivery failed for "
                              f"{settings.WEBHOOK_DISABLE_AFTER_HOURS:g} h (last: {result.error})", now=done)
    attempts = notification.attempts
    if final or gone or is_test or not endpoint.enabled or attempts >= len(ENDPOINT_RETRY_SCHEDULE):
        notification.status = NotificationStatus.FAILED
        notification.failed_at = done
        return None
    delay = ENDPOINT_RETRY_SCHEDULE[attempts]
    if result.retry_after is not None:
        delay = max(delay, min(result.retry_after, RETRY_AFTER_MAX_SECONDS))
    notification.next_attempt_at = done + timedelta(seconds=delay)
    notification.retry_until = max(notification.retry_until, notification.next_attempt_at)
    return delay




def endpoint_deliver(*, notification: Notification, now: datetime | None) -> dict:
    at = timezone.now() if now is None else now
    result, final = _endpoint_attempt(notification, at)
    done = timezone.now() if now is None else now
    with transaction.atomic():
        notification = Notification.objects.select_for_update().get(pk=notification.pk)
        NotificationAttempt.objects.create(notification=notification, attempted_at=done, success=result.ok,
                                           status_code=result.status_code, error=result.error,
                                           duration_ms=result.duration_ms)
        notification.attempts += 1
        notification.last_error = result.error
        notification.last_status_code = result.status_code
        retry_in = _endpoint_outcome(notification=notification, result=result, final=final, done=done)
        notification.save()
    return {"id": notification.pk, "status": notification.status, "attempts": notification.attempts,
            "retry_in": retry_in}
