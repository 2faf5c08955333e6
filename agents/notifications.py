"""Slack-compatible webhook messages (`{"text": ...}`), posted only by the notification outbox's
Celery task (notifications/services/), never in a request."""
import requests
from django.conf import settings



def webhook_post(*, text: str, url: str | None = None) -> bool:
    """Post one message; False when no webhook is configured. Raises requests errors (the outbox retries)."""
    url = url if url is not None else settings.TERMINATION_NOTIFICATION_WEBHOOK
    if not url:
        return False
    response = requests.post(url, json={"text": text}, timeout=settings.NOTIFICATION_WEBHOOK_TIMEOUT)
    response.raise_for_status()
    return True
