"""Handing a notification's delivery to the broker, after commit, never failing the caller: with the
broker down the row stays unpublished and the outbox sweep (`notifications_publish_due`) sends it."""
import logging
import os
import queue
import threading

from celery import current_app
from circuitbreaker import CircuitBreaker, CircuitBreakerError
from django.conf import settings
from django.db import connections
from django.utils import timezone

from notifications.models import Notification
from spotbackend.metrics import NOTIFICATION_PUBLISHES

logger = logging.getLogger(__name__)

PUBLISH_PAUSE_SECONDS = 30


class _BackgroundPublisher:
    """One daemon thread per process that hands notifications to the broker, so that the request which
    committed them never waits for a broker that is down or hung (its timeouts and the pause after a
    failure apply here instead). A row it could not publish, or still had queued when the process
    stopped, is sent by the outbox sweep (`notifications_publish_due`, every minute)."""

    MAX_QUEUED = 10_000  # beyond this, rows are left to the sweep

    def __init__(self):
        self._pid = None
        self._queue: queue.Queue | None = None
        self._lock = threading.Lock()

    def submit(self, notification_id: int) -> bool:
        with self._lock:
            if self._pid != os.getpid():  # first use in this (possibly forked) process
                self._queue = queue.Queue(maxsize=self.MAX_QUEUED)
                self._pid = os.getpid()
                threading.Thread(target=self._run, args=(self._queue,), name="notification-publisher",
                                 daemon=True).start()
            q = self._queue
        try:
            q.put_nowait(notification_id)
        except queue.Full:
            logger.warning("Notification %s left to the sweep (publisher queue full)", notification_id)
            return False
        return True

    def join(self) -> None:
        """Wait until everything submitted so far was handled (tests, benchmarks)."""
        q = self._queue
        if q is not None and self._pid == os.getpid():
            q.join()

    def _run(self, q: queue.Queue) -> None:
        while True:
            notification_id = q.get()
            try:
                notification_publish(notification_id=notification_id)
            except Exception:  # never let the thread die
                logger.exception("Notification %s: publishing failed", notification_id)
            finally:
                connections.close_all()  # this thread's connection only; none is kept between rows
                q.task_done()


background_publisher = _BackgroundPublisher()


def notification_publish_after_commit(*, notification_id: int) -> None:
    """Publish a committed notification: from the background thread (NOTIFICATION_PUBLISH_BACKGROUND,
    the default: the committing request never waits for the broker), else at once."""
    if settings.NOTIFICATION_PUBLISH_BACKGROUND:
        background_publisher.submit(notification_id)
    else:
        notification_publish(notification_id=notification_id)


# After a failed publish this process leaves the broker alone for PUBLISH_PAUSE_SECONDS (the sweep sends
# the rows), so a broker outage costs one publish its connect timeout, not every one.
publish_breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=PUBLISH_PAUSE_SECONDS,
                                 expected_exception=Exception, name="notification-publish")


@publish_breaker
def _send(notification_id: int, countdown: int | None) -> None:
    # retry=False: a broker that is down fails at once instead of blocking. The task by its registered
    # name (notifications/tasks.py imports this module).
    current_app.tasks["notifications.deliver"].apply_async(args=(notification_id,), countdown=countdown, retry=False)


def notification_publish(*, notification_id: int, countdown: int | None = None) -> bool:
    """Hand the delivery task to the broker. Never raises: with the broker down the row stays
    unpublished and `notifications_publish_due` sends it later."""
    try:
        _send(notification_id, countdown)
    except CircuitBreakerError:
        NOTIFICATION_PUBLISHES.labels("skipped").inc()
        logger.warning("Notification %s not published (broker failed recently); the sweep will send it",
                       notification_id)
        return False
    except Exception:  # any broker or transport error: the periodic sweep picks the row up
        NOTIFICATION_PUBLISHES.labels("failed").inc()
        logger.warning("Notification %s not published (broker unavailable); the sweep will send it",
                       notification_id, exc_info=True)
        return False
    NOTIFICATION_PUBLISHES.labels("published").inc()
    try:
        Notification.objects.filter(pk=notification_id).update(published_at=timezone.now())
    except Exception:  # only bookkeeping; the task is already queued
        logger.warning("Notification %s published but not marked", notification_id, exc_info=True)
    return True
