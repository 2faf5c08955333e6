"""Handing a notification's delivery to the broker, after commit, never failing the caller: with the
broker down the row stays unpublished and the outbox sweep (`notifications_publish_due`) sends it."""
import logging
import time

from celery import current_app
from django.utils import timezone

from notifications.models import Notification

logger = logging.getLogger(__name__)

# After a failed publish this process leaves the broker alone for a while (the sweep sends the rows),
# so a broker outage costs one request its connect timeout, not every request.
PUBLISH_PAUSE_SECONDS = 30
_publish_paused_until = 0.0


def notification_publish(*, notification_id: int, countdown: int | None = None) -> bool:
    """Hand the delivery task to the broker. Never raises: with the broker down the row stays
    unpublished and `notifications_publish_due` sends it later."""
    global _publish_paused_until
    if time.monotonic() < _publish_paused_until:
        logger.warning("Notification %s not published (broker failed recently); the sweep will send it",
                       notification_id)
        return False
    try:
        # retry=False: a broker that is down fails at once instead of blocking the request.
        # The task by its registered name (notifications/tasks.py imports this module).
        current_app.tasks["notifications.deliver"].apply_async(args=(notification_id,), countdown=countdown,
                                                               retry=False)
    except Exception:  # any broker or transport error: the periodic sweep picks the row up
        _publish_paused_until = time.monotonic() + PUBLISH_PAUSE_SECONDS
        logger.warning("Notification %s not published (broker unavailable); the sweep will send it",
                       notification_id, exc_info=True)
        return False
    try:
        Notification.objects.filter(pk=notification_id).update(published_at=timezone.now())
    except Exception:  # only bookkeeping; the task is already queued
        logger.warning("Notification %s published but not marked", notification_id, exc_info=True)
    return True
