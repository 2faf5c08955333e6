"""The base class of every Celery task of the project (`Celery(task_cls=...)` in spotbackend/celery.py):
a scheduled job never runs twice for the same slot.

Beat (spotbackend/beat.py) sends each job once per slot and puts the slot in the task's
`spotbackend_job_slot` header. The worker remembers a slot that ran to the end in Redis
(`spotbackend:job:done:<slot>`, kept a day) and skips the same slot if it comes again: a message
redelivered after a worker lost its connection, a beat that re-sent during a lock hand-over. A task
that failed or whose worker died is not marked, so its redelivery runs it (late acks). Tasks sent
without a slot (everything but beat's) are not affected. Without Redis nothing is remembered (one
host: beat's own claim is the guard). This module imports no app."""
import logging
import time

from celery import Task

logger = logging.getLogger(__name__)

SLOT_HEADER = "spotbackend_job_slot"
DONE_PREFIX = "spotbackend:job:done:"
DONE_KEEP_SECONDS = 86400

_client = {"url": None, "client": None, "retry_at": 0.0}


def _redis():
    """A Redis client on REDIS_URL, or None (no Redis, or it failed a moment ago)."""
    from django.conf import settings

    url = getattr(settings, "REDIS_URL", "")
    if not url or time.monotonic() < _client["retry_at"]:
        return None
    if _client["url"] != url:
        import redis

        _client.update(url=url, client=redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2))
    return _client["client"]


def _slot_of(request) -> str | None:
    if request is None:
        return None
    # A worker merges custom message headers into the request; an eager apply(headers=) keeps them apart.
    return request.get(SLOT_HEADER) or (getattr(request, "headers", None) or {}).get(SLOT_HEADER)


def _redis_call(fn):
    import redis

    try:
        return fn()
    except redis.RedisError as exc:
        logger.warning("job slot bookkeeping skipped: Redis failed (%s)", exc)
        _client["retry_at"] = time.monotonic() + 5
        return None


class SlotOnceTask(Task):
    def __call__(self, *args, **kwargs):
        slot = _slot_of(self.request)
        client = _redis() if slot else None
        if client is None:
            return super().__call__(*args, **kwargs)
        if _redis_call(lambda: client.exists(DONE_PREFIX + slot)):
            logger.warning("job %s already ran for slot %s; skipped", self.name, slot)
            return None
        result = super().__call__(*args, **kwargs)
        _redis_call(lambda: client.set(DONE_PREFIX + slot, "1", ex=DONE_KEEP_SECONDS))
        return result
