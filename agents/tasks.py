"""Thin Celery tasks of the agents app. Notifications are delivered by the outbox (notifications/tasks.py)."""
from celery import shared_task
from django.db import transaction

from notifications.services import notification_enqueue


@shared_task
def webhook_notify(text: str) -> dict:
    """Kept for messages queued before the outbox existed: hands the text to the outbox."""
    with transaction.atomic():
        notification = notification_enqueue(kind="legacy", text=text)
    return {"notification_id": notification.pk if notification else None}


@shared_task(name="agents.tasks.agents_metrics_refresh", ignore_result=True)
def agents_metrics_refresh() -> dict:
    """Scheduled every minute: the fleet's gauges for /metrics (agents by status, stale, newest heartbeat)."""
    from agents.services.fleet_metrics import agents_metrics_snapshot

    return agents_metrics_snapshot()
