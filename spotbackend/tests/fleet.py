"""Web hosts (gunicorn gthread of this checkout on loopback ports, sharing the test database and Redis)
behind a private nginx (deploy/nginx/), and a steady agent load through it: for the live tests of
hosts coming and going (test_fleet_live.py) and of the proxy (test_proxy_live.py)."""
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection

from agents.tests import payloads
from conftest import TEST_REDIS_URL
from deploy.nginx.local import free_port

START_DEADLINE = 60


def database_url() -> str:
    s = connection.settings_dict
    user = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"mysql://{user}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 3306}/{s['NAME']}"


class Host:
    """One web host: `gunicorn --worker-class gthread` in its own process group on a fixed port."""

    def __init__(self, directory: Path, name: str, *, workers: int = 2, threads: int = 2, **env):
        if connection.settings_dict["ENGINE"] == "django.db.backends.sqlite3":
            pytest.fail("the web hosts share one server database: run on MariaDB (make test)")
        self.name = name
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.dir = Path(directory) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.workers, self.threads = workers, threads
        self.env = {
            **os.environ, "DATABASE_URL": database_url(), "REDIS_URL": TEST_REDIS_URL,
            "SPOTBACKEND_VAR_DIR": str(self.dir), "DEBUG": "false", "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "WARNING", "NUM_PROXIES": "1", **env,
        }
        self.env.pop("TEST_DATABASE_NAME", None)
        self.proc = None
        self.starts = 0

    def start(self) -> "Host":
        self.starts += 1
        log = open(self.dir / f"gunicorn-{self.starts}.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "spotbackend.wsgi:application", "--bind", self.addr,
             "--worker-class", "gthread", "--workers", str(self.workers), "--threads", str(self.threads),
             "--no-control-socket", "--graceful-timeout", "10", "--log-level", "warning"],
            cwd=settings.BASE_DIR, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_DEADLINE
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                if requests.get(f"http://{self.addr}/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name} did not answer /health:\n{self.log()[-3000:]}")
            time.sleep(0.2)  # polling interval; the deadline bounds the wait

    def log(self) -> str:
        return (self.dir / f"gunicorn-{self.starts}.log").read_text(errors="replace")

    def kill(self) -> None:
        """The host dies: SIGKILL to gunicorn's whole process group (master and workers)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 30) -> int:
        """A graceful stop (SIGTERM to the master, which lets requests in flight finish)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            raise

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)


@dataclass
class Call:
    agent: int
    kind: str
    request_id: str
    started: float  # monotonic
    ended: float = 0.0
    status: int = 0  # HTTP status, or 0 for a transport error
    error: str = ""
    sent_at: datetime | None = None  # heartbeat: the wall clock before sending
    collected_at: datetime | None = None  # pricing report: the sample time it carries


_collected_lock = threading.Lock()
_collected_base = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(hours=2)
_collected_n = [0]


def _next_collected_at() -> datetime:
    """A distinct sample time per pricing report (in the past, so the server keeps it as sent)."""
    with _collected_lock:
        _collected_n[0] += 1
        return _collected_base + timedelta(milliseconds=_collected_n[0])


@dataclass
class AgentLoad:
    """`agents` agents, each a thread looping over heartbeat, pending-commands, pricing-report and
    config through `base` until stopped or `max_rounds` rounds are done (a bounded loop)."""

    base: str
    token: str
    agents: int = 6
    max_rounds: int = 400
    pause: float = 0.02
    calls: list = field(default_factory=list)
    ids: list = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._threads = []
        self._lock = threading.Lock()

    def register(self) -> None:
        for i in range(self.agents):
            body = payloads.register_v4(token=self.token, instance_id=f"i-0f1ee7{i:010x}", logical_agent_id=f"fleet-{i}")
            r = requests.post(f"{self.base}/api/agents/register", json=body, timeout=30,
                              headers={"Authorization": f"Bearer {self.token}"})
            assert r.status_code == 200, r.text
            self.ids.append(r.json()["agent_id"])

    def _one(self, session, i: int, kind: str) -> Call:
        agent_id, instance_id = self.ids[i], f"i-0f1ee7{i:010x}"
        call = Call(agent=i, kind=kind, request_id=uuid.uuid4().hex, started=time.monotonic())
        headers = {"Authorization": f"Bearer {self.token}", "X-Request-ID": call.request_id}
        url = f"{self.base}/api/agents/{agent_id}/{kind}"
        try:
            if kind == "heartbeat":
                call.sent_at = datetime.now(timezone.utc)
                r = session.post(url, json=payloads.heartbeat(instance_id=instance_id), headers=headers, timeout=30)
            elif kind == "pricing-report":
                call.collected_at = _next_collected_at()
                body = payloads.pricing_v4(instance_id=instance_id, collected_at=call.collected_at.isoformat())
                r = session.post(url, json=body, headers=headers, timeout=30)
            elif kind == "pending-commands":
                r = session.get(url, params={"instance_id": instance_id}, headers=headers, timeout=30)
            else:
                r = session.get(url, headers=headers, timeout=30)
            call.status = r.status_code
            if r.status_code != 200:
                call.error = r.text[:200]
        except requests.RequestException as exc:
            call.error = type(exc).__name__
        call.ended = time.monotonic()
        return call

    def _agent(self, i: int) -> None:
        session = requests.Session()
        kinds = ("heartbeat", "pending-commands", "pricing-report", "config")
        for n in range(self.max_rounds):
            if self._stop.is_set():
                break
            call = self._one(session, i, kinds[n % len(kinds)])
            with self._lock:
                self.calls.append(call)
            self._stop.wait(self.pause)
        session.close()

    def start(self) -> "AgentLoad":
        for i in range(self.agents):
            t = threading.Thread(target=self._agent, args=(i,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def done_count(self) -> int:
        with self._lock:
            return len(self.calls)

    def wait_calls(self, n: int, deadline_seconds: float = 60) -> None:
        """Until `n` more calls have been answered (or failed); the deadline bounds the wait."""
        target = self.done_count() + n
        deadline = time.monotonic() + deadline_seconds
        while self.done_count() < target:
            assert time.monotonic() < deadline, f"the load made no progress: {self.done_count()} < {target}"
            assert any(t.is_alive() for t in self._threads), "the load ended early (max_rounds too small)"
            time.sleep(0.05)  # polling interval

    def stop(self) -> list:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in self._threads), "an agent thread did not stop"
        return list(self.calls)


def lost_writes(calls: list, agent_ids: list) -> list[str]:
    """Acknowledged (200) heartbeats and pricing reports that are not in the database. An unchanged
    heartbeat's time may lag by the buffer's HEARTBEAT_BUFFER_SECONDS (and is kept to the second), and
    a host killed with SIGKILL loses at most that much of it (docs/ARCHITECTURE.md §8): the check waits
    for the surviving hosts' buffers and allows that lag, nothing more."""
    from agents.models import Agent, SpotPriceSample
    from spotbackend import settings as hosts_settings  # the hosts' value (the tests override their own)

    lag = timedelta(seconds=hosts_settings.HEARTBEAT_BUFFER_SECONDS + 1)
    time.sleep(hosts_settings.HEARTBEAT_BUFFER_SECONDS + 1)  # the buffers' next round
    problems = []
    last_beat = {}
    for c in calls:
        if c.kind == "heartbeat" and c.status == 200:
            last_beat[c.agent] = max(last_beat.get(c.agent, c.sent_at), c.sent_at)
    stored = {str(pk): at for pk, at in Agent.objects.filter(pk__in=agent_ids).values_list("pk", "last_heartbeat_at")}
    for i, sent_at in last_beat.items():
        at = stored.get(str(agent_ids[i]))
        if at is None or at < sent_at - lag:
            problems.append(f"agent {i}: heartbeat sent at {sent_at} acknowledged, database has {at}")
    reports = [c.collected_at.replace(tzinfo=timezone.utc) for c in calls if c.kind == "pricing-report" and c.status == 200]
    samples = set(SpotPriceSample.objects.filter(pool_id="t3.medium.us-east-1a", observed_at__in=reports)
                  .values_list("observed_at", flat=True))
    problems += [f"pricing report of {at} acknowledged, no sample stored" for at in reports if at not in samples]
    return problems
