"""Slack-compatible webhook messages (`{"text": ...}`), posted only from Celery tasks, never in a request."""
import requests
from django.conf import settings

WEBHOOK_TIMEOUT_SECONDS = 5


def webhook_post(*, text: str, url: str | None = None) -> bool:
    """Post one message; False when no webhook is configured. Raises requests errors (the task retries)."""
    url = url if url is not None else settings.TERMINATION_NOTIFICATION_WEBHOOK
    if not url:
        return False
    response = requests.post(url, json={"text": text}, timeout=WEBHOOK_TIMEOUT_SECONDS)
    response.raise_for_status()
    return True
