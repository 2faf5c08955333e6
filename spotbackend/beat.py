"""Exactly one Celery beat schedules the jobs, even when two are started by mistake
(docs/OPERATIONS.md, "Scheduled jobs: exactly one beat").

`LockedDatabaseScheduler` is django-celery-beat's DatabaseScheduler (the schedule in the database,
editable in the admin) with two guards:

* a leader lock: a beat sends tasks only while it holds `spotbackend:beat:leader` in Redis (REDIS_URL;
  redis-py's Lock with a BEAT_LOCK_TTL expiry, renewed every third of it, released on a clean stop). A second
  beat waits, checking every few seconds, and takes over within BEAT_LOCK_TTL when the first dies.
  Without Redis (`make run`, one host) an exclusive file lock in $SPOTBACKEND_VAR_DIR plays that part;
* an idempotency key per job and slot: before sending, the beat claims
  `spotbackend:beat:slot:<job>:<slot>` (SET NX, kept a day), where the slot is the run's minute for a
  crontab job and its interval bucket (time // interval) for an interval job. A job already sent for
  that slot (a second beat during a lock hand-over, a restarted beat re-sending) is not sent again.
  The key travels with the task in the `spotbackend_job_slot` header, and the worker skips a slot
  that already ran to the end (spotbackend/jobs.py: a redelivered message, a re-send).

Every scheduled job is idempotent besides (a worker that dies mid-task has it redelivered and run).
This module imports no app."""
import fcntl
import logging
import os
import socket
import time
from pathlib import Path

from celery import schedules
from django.conf import settings
from django_celery_beat.schedulers import DatabaseScheduler

logger = logging.getLogger(__name__)

LOCK_KEY = "spotbackend:beat:leader"
SLOT_PREFIX = "spotbackend:beat:slot:"
SLOT_HEADER = "spotbackend_job_slot"  # = spotbackend.jobs.SLOT_HEADER (the worker's side)
SLOT_KEEP_SECONDS = 86400


def job_slot(entry, now: float) -> str:
    """The slot of a run of `entry` due at `now` (epoch seconds): its minute for a crontab, its
    interval bucket for an interval schedule."""
    schedule = entry.schedule
    if isinstance(schedule, schedules.schedule) and not isinstance(schedule, schedules.crontab):
        every = max(schedule.run_every.total_seconds(), 1.0)
        return f"{entry.name}:every{int(every)}:{int(now // every)}"
    return f"{entry.name}:minute:{int(now // 60)}"


class _RedisLeader:
    """The leader lock is redis-py's `Lock` (SET NX with an expiry; renewed and released only by its
    holder's token)."""

    def __init__(self, url: str, ttl: float):
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.ttl = ttl
        self.lock = self.client.lock(LOCK_KEY, timeout=ttl, blocking=False, thread_local=False)
        self.token = f"{socket.gethostname()}:{os.getpid()}"
        self.renewed = None  # monotonic time of the last successful acquire or renewal

    def hold(self) -> bool:
        """True while this beat is the leader (acquiring or renewing the lock as needed)."""
        import redis

        now = time.monotonic()
        try:
            if self.renewed is not None:
                if now - self.renewed < self.ttl / 3:
                    return True
                self.lock.reacquire()  # raises LockNotOwnedError when it expired and another beat took it
                self.renewed = now
                return True
            if self.lock.acquire():
                self.renewed = now
                logger.info("beat: holding the leader lock %s; scheduling", LOCK_KEY)
                return True
            return False
        except redis.exceptions.LockError:
            logger.warning("beat: lost the leader lock %s; no longer scheduling", LOCK_KEY)
            self.renewed = None
            return False
        except redis.RedisError as exc:
            # Redis unreachable: keep scheduling only while our lock cannot have expired yet.
            still = self.renewed is not None and now - self.renewed < self.ttl * 2 / 3
            logger.warning("beat: leader lock check failed (%s); %s", exc, "still leading" if still else "waiting")
            if not still:
                self.renewed = None
            return still

    def claim(self, slot: str) -> bool:
        import redis

        try:
            return bool(self.client.set(SLOT_PREFIX + slot, self.token, nx=True, ex=SLOT_KEEP_SECONDS))
        except redis.RedisError as exc:
            logger.warning("beat: could not claim slot %s (%s); sending anyway (the job is idempotent)", slot, exc)
            return True

    def release(self) -> None:
        if self.renewed is None:
            return
        try:
            self.lock.release()
        except Exception:  # stopping anyway; the lock expires
            pass
        self.renewed = None


class _FileLeader:
    """One host, no Redis (`make run`): an exclusive lock on a file, held as long as the process lives."""

    def __init__(self, path: Path):
        self.path = path
        self.fh = None
        self.last_slots = {}

    def hold(self) -> bool:
        if self.fh is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        self.fh = fh
        logger.info("beat: holding the leader lock %s; scheduling", self.path)
        return True

    def claim(self, slot: str) -> bool:
        job, _, bucket = slot.rpartition(":")
        if self.last_slots.get(job) == bucket:
            return False
        self.last_slots[job] = bucket
        return True

    def release(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


class LockedDatabaseScheduler(DatabaseScheduler):
    def __init__(self, *args, **kwargs):
        ttl = float(getattr(settings, "BEAT_LOCK_TTL", 30))
        url = getattr(settings, "BEAT_LOCK_REDIS_URL", "") or getattr(settings, "REDIS_URL", "")
        self.leader = _RedisLeader(url, ttl) if url else _FileLeader(Path(settings.VAR_DIR) / "celerybeat.lock")
        self.lock_check = max(min(ttl / 3, 5.0), 0.2)
        self._waiting_logged = False
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs):
        if not self.leader.hold():
            if not self._waiting_logged:
                logger.info("beat: another beat holds the leader lock; waiting (checking every %.0fs)",
                            self.lock_check)
                self._waiting_logged = True
            return self.lock_check
        self._waiting_logged = False
        return min(super().tick(*args, **kwargs), self.lock_check)

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        slot = job_slot(entry, time.time())
        if not self.leader.claim(slot):
            logger.warning("beat: %s already sent for slot %s; not sending it again", entry.name, slot)
            if advance:
                self.reserve(entry)
            return None
        headers = {**(entry.options.get("headers") or {}), SLOT_HEADER: slot}
        entry.options = {**entry.options, "headers": headers}
        return super().apply_async(entry, producer=producer, advance=advance, **kwargs)

    def close(self):
        try:
            super().close()
        finally:
            self.leader.release()
