"""Thin Celery tasks of the agents app: they load by id, call a service, return a small summary."""
import requests
from celery import shared_task

from agents.notifications import webhook_post


@shared_task(
    bind=True,
    autoretry_for=(requests.RequestException,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=6,
)
def webhook_notify(self, text: str) -> dict:
    """Deliver one notification; a failed delivery is retried with exponential backoff."""
    return {"sent": webhook_post(text=text)}
