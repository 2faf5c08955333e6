"""Thin Celery tasks of the notification outbox (the logic is in notifications/services/)."""
from celery import shared_task

from notifications.services import notification_deliver, notification_publish, notifications_publish_due


@shared_task(name="notifications.deliver")
def notification_deliver_task(notification_id: int) -> dict:
    """One attempt; on failure the next one is queued after the backoff (the sweep covers a lost one)."""
    result = notification_deliver(notification_id=notification_id)
    if result.get("retry_in"):
        notification_publish(notification_id=notification_id, countdown=result["retry_in"])
    return result


@shared_task(name="notifications.publish_due")
def notifications_publish_due_task() -> dict:
    """Scheduled every minute: re-send what was never published or whose retry was lost."""
    return {"published": notifications_publish_due()}


@shared_task(name="notifications.outbox_metrics_refresh", ignore_result=True)
def outbox_metrics_refresh_task() -> dict:
    """Scheduled every minute: the outbox's gauges for /metrics."""
    from notifications.services import outbox_metrics_snapshot

    return outbox_metrics_snapshot()
