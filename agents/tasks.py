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
