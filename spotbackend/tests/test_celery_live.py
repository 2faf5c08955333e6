"""A real Celery worker (subprocess, Redis broker at TEST_REDIS_URL) runs a task end to end against this
test's database. Never skipped: `make test` starts Redis when it is down."""
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection
from django.utils import timezone

from agents.models import Agent, SystemEvent
from agents.tests.factories import AgentFactory
from spotbackend.tests.live import process_stop

DEADLINE_SECONDS = 90


def _database_url() -> str:
    s = connection.settings_dict
    if s["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{s['NAME']}"
    user = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"mysql://{user}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 3306}/{s['NAME']}"


@pytest.mark.live
@pytest.mark.django_db(transaction=True)  # committed rows: the worker's own connection must see them
def test_real_worker_runs_the_stale_agent_sweep(tmp_path, redis_url):
    agent = AgentFactory(last_heartbeat_at=timezone.now() - timedelta(hours=2))
    queue = f"sb-live-{uuid.uuid4().hex[:12]}"  # our own queue: other runs on this Redis never take our task
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),  # the test database itself
        "REDIS_URL": redis_url,
        "CONN_MAX_AGE": "0",
        "AGENT_HEARTBEAT_TIMEOUT": "300",
        "SPOTBACKEND_VAR_DIR": str(tmp_path),
    }
    env.pop("TEST_DATABASE_NAME", None)
    log = open(tmp_path / "worker.log", "w+")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "spotbackend", "worker", "--pool", "solo", "-Q", queue,
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"],
        cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    sender = Celery("live-test", broker=redis_url, set_as_current=False)  # leave the project app current
    try:
        sender.send_task("agents.periodic.stale_agents_sweep", queue=queue)
        deadline = time.monotonic() + DEADLINE_SECONDS
        status = None
        while time.monotonic() < deadline and worker.poll() is None:
            status = Agent.objects.values_list("status", flat=True).get(pk=agent.pk)
            if status == "offline":
                break
            time.sleep(0.2)  # polling interval, not a timing assumption: the deadline bounds the wait
        log.seek(0)
        output = log.read()
        assert status == "offline", f"worker exit={worker.poll()}\n{output[-4000:]}"
        assert SystemEvent.objects.filter(agent=agent, event_type="agent_offline").count() == 1
        assert "agents.periodic.stale_agents_sweep" in output
    finally:
        process_stop(worker)
        log.close()
        with sender.connection_for_write() as conn:  # leave nothing behind on the shared Redis
            conn.default_channel.queue_delete(queue)
