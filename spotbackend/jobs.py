"""The base class of every Celery task of the project (`Celery(task_cls=...)` in spotbackend/celery.py):
a scheduled job never runs twice for the same slot.

Beat (spotbackend/beat.py) sends each job once per slot and puts the slot in the task's
`spotbackend_job_slot` header. The worker remembers a slot that ran to the end in Redis
through Django's cache (`spotbackend:job:done:<slot>`, kept a day) and skips the same slot if it comes
again: a message redelivered after a worker lost its connection, a beat that re-sent during a lock
hand-over. A task that failed or whose worker died is not marked, so its redelivery runs it (late
acks). Tasks sent without a slot (everything but beat's) are not affected. Without Redis the cache is
the process's own (one host: beat's own claim is the guard). This module imports no app."""
import logging

from celery import Task

logger = logging.getLogger(__name__)

SLOT_HEADER = "spotbackend_job_slot"
DONE_PREFIX = "spotbackend:job:done:"
DONE_KEEP_SECONDS = 86400


def _slot_of(request) -> str | None:
    if request is None:
        return None
    # A worker merges custom message headers into the request; an eager apply(headers=) keeps them apart.
    return request.get(SLOT_HEADER) or (getattr(request, "headers", None) or {}).get(SLOT_HEADER)


def _done(slot: str, *, mark: bool = False) -> bool:
    """Whether the slot already ran to the end (Django's cache: Redis, shared by every worker), or mark
    it so. A cache that fails answers "not done": the job is idempotent, running it again is safe."""
    from django.core.cache import cache

    try:
        if mark:
            cache.set(DONE_PREFIX + slot, True, DONE_KEEP_SECONDS)
            return True
        return bool(cache.get(DONE_PREFIX + slot))
    except Exception as exc:  # any cache error
        logger.warning("job slot bookkeeping skipped: the cache failed (%s)", exc)
        return False


class SlotOnceTask(Task):
    def __call__(self, *args, **kwargs):
        slot = _slot_of(self.request)
        if slot is None:
            return super().__call__(*args, **kwargs)
        if _done(slot):
            logger.warning("job %s already ran for slot %s; skipped", self.name, slot)
            return None
        result = super().__call__(*args, **kwargs)
        _done(slot, mark=True)
        return result
