"""Exactly one Celery beat schedules the jobs even when two are started by mistake, and a job is never
sent twice for the same slot (spotbackend/beat.py): two real `celery beat` processes on the test
database and the test Redis (the broker), whose queue is read here instead of by a worker."""
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import redis
from django.conf import settings

from spotbackend import beat
from spotbackend.schedule import periodic_tasks_sync
from spotbackend.tests.live import database_url

DEADLINE = 60
LOCK_TTL = 3
TICK = "agents.periodic.stale_agents_sweep"


def test_one_leader_and_one_claim_per_slot(redis_url):
    first, second = beat._RedisLeader(redis_url, 30), beat._RedisLeader(redis_url, 30)
    redis.Redis.from_url(redis_url).delete(beat.LOCK_KEY)
    assert first.hold() and not second.hold()
    assert first.hold()  # renewing its own lock
    first.release()
    assert second.hold() and not first.hold()
    second.release()
    slot = "Beat test tick:every5:123"
    redis.Redis.from_url(redis_url).delete(beat.SLOT_PREFIX + slot)
    assert first.claim(slot) and not second.claim(slot) and not first.claim(slot)


def test_the_slot_of_a_run():
    from celery.schedules import crontab, schedule

    class Entry:
        def __init__(self, name, sched):
            self.name, self.schedule = name, sched

    assert beat.job_slot(Entry("f", schedule(5)), 1000.0) == beat.job_slot(Entry("f", schedule(5)), 1004.9)
    assert beat.job_slot(Entry("f", schedule(5)), 1000.0) != beat.job_slot(Entry("f", schedule(5)), 1005.0)
    assert beat.job_slot(Entry("c", crontab()), 600.0) == beat.job_slot(Entry("c", crontab()), 659.0)
    assert beat.job_slot(Entry("c", crontab()), 600.0) != beat.job_slot(Entry("d", crontab()), 600.0)


def _start_beat(tmp_path, name, redis_url):
    env = {**os.environ, "DATABASE_URL": database_url(), "REDIS_URL": redis_url, "SPOTBACKEND_VAR_DIR": str(tmp_path),
           "BEAT_LOCK_TTL": str(LOCK_TTL), "CONN_MAX_AGE": "0"}
    env.pop("TEST_DATABASE_NAME", None)
    log = tmp_path / f"{name}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "spotbackend", "beat", "--loglevel", "INFO",
         "--schedule", str(tmp_path / f"{name}-schedule"), "--pidfile", str(tmp_path / f"{name}.pid")],
        cwd=settings.BASE_DIR, env=env, stdin=subprocess.DEVNULL, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc, log


def _wait_for(log, text, proc):
    deadline = time.monotonic() + DEADLINE
    while text not in log.read_text(errors="replace"):
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, f"not in {log.name}: {text}\n" + log.read_text(errors="replace")[-3000:]
        time.sleep(0.2)  # polling interval; the deadline bounds the wait


def _sent(client) -> list[tuple[str, str]]:
    """(task name, slot) of every message the beats published to the default queue, oldest first
    (kombu pushes on the left)."""
    out = []
    for raw in reversed(client.lrange("celery", 0, -1)):
        headers = json.loads(raw)["headers"]
        out.append((headers["task"], headers.get(beat.SLOT_HEADER)))
    return out


def _claimed_by(client, slots) -> Counter:
    return Counter(client.get(beat.SLOT_PREFIX + slot).decode().split(":")[1] for slot in slots)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_two_beats_started_by_mistake_send_each_job_once(tmp_path, settings, redis_url):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    periodic_tasks_sync()
    # A job every second beside the real ones: many slots in a few seconds (sent, never run: no worker).
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="Beat test tick", task=TICK, interval=every_second)
    client = redis.Redis.from_url(redis_url)
    client.delete("celery", beat.LOCK_KEY)
    procs = []
    try:
        first, first_log = _start_beat(tmp_path, "beat-1", redis_url)
        procs.append(first)
        _wait_for(first_log, "holding the leader lock", first)
        second, second_log = _start_beat(tmp_path, "beat-2", redis_url)
        procs.append(second)
        _wait_for(second_log, "another beat holds the leader lock", second)
        start = len(_sent(client))
        deadline = time.monotonic() + DEADLINE
        while len(_sent(client)) < start + 4:  # four more runs while both beats are up
            assert time.monotonic() < deadline, "no job was sent"
            time.sleep(0.2)
        # The first beat dies without releasing its lock: the second takes over once it expires.
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        both_up = _sent(client)  # everything sent until the first one died
        _wait_for(second_log, "holding the leader lock", second)
        count = len(_sent(client))
        while len(_sent(client)) < count + 3:
            assert time.monotonic() < deadline + DEADLINE, "the second beat sent nothing"
            time.sleep(0.2)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
    sent = _sent(client)
    client.delete("celery")
    slots = [slot for _, slot in sent]
    assert all(slots), "every scheduled task carries its slot"
    duplicates = [slot for slot, n in Counter(slots).items() if n > 1]
    assert duplicates == [], duplicates
    ticks = [slot for task, slot in sent if task == TICK]
    assert len(ticks) >= 7
    # While both ran, only the first one sent; afterwards only the second.
    before = [slot for _, slot in both_up]
    after = [slot for _, slot in sent[len(both_up):]]
    assert _claimed_by(client, before).keys() == {str(first.pid)}
    assert _claimed_by(client, after).keys() == {str(second.pid)}


def test_without_redis_a_file_lock_keeps_a_second_beat_waiting(tmp_path):
    first, second = beat._FileLeader(tmp_path / "celerybeat.lock"), beat._FileLeader(tmp_path / "celerybeat.lock")
    try:
        assert first.hold() and not second.hold()
        assert first.claim("Daily savings:minute:1") and not first.claim("Daily savings:minute:1")
        first.release()
        assert second.hold()
    finally:
        first.release()
        second.release()


def test_a_job_runs_once_per_slot_on_the_worker():
    """The worker's side (spotbackend/jobs.py): a slot that ran is skipped when it comes again; a slot
    whose run failed runs again; a task without a slot always runs."""
    from spotbackend import jobs
    from spotbackend.celery import app

    runs = []

    @app.task(name="spotbackend.tests.test_beat_live.job")
    def job(fail=False):
        runs.append(fail)
        if fail:
            raise RuntimeError("boom")
        return len(runs)

    assert isinstance(job, jobs.SlotOnceTask)
    slot = {jobs.SLOT_HEADER: "job:minute:1"}
    assert job.apply(headers=slot).get() == 1
    assert job.apply(headers=slot).get() is None  # the same slot again: skipped
    assert len(runs) == 1
    failing = {jobs.SLOT_HEADER: "job:minute:2"}
    assert job.apply(kwargs={"fail": True}, headers=failing).failed()
    assert job.apply(headers=failing).get() == 3  # not marked after the failure: runs again
    assert job.apply().get() == 4 and job.apply().get() == 5  # no slot: always
