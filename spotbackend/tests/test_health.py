"""Health that load balancers can use (docs/OPERATIONS.md, "Health and metrics"): /health/live touches
nothing, /health/ready and /health fail only when the database does not answer; Redis, the broker and
the scheduled jobs are reported as ok/degraded with a 200. A hung dependency is faced with private
fakes on free loopback ports (one that accepts and never answers, one that is closed)."""
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from ops.models import JobStat
from spotbackend import health
from spotbackend.tests.faketcp import FakeTCP

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake():
    server = FakeTCP()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _no_check_left_running():
    """A check stuck on a hung fake keeps its thread until its socket timeout: the next test waits for
    it, so that it starts with no check in flight."""
    yield
    for thread in health.checks_in_flight():
        thread.join(30)


def blocked_forever():
    gate = threading.Event()

    def check():
        gate.wait()

    return check, gate


def test_live_and_ready_and_health_answer_200_with_every_dependency_up(client, settings, redis_url, broker_at):
    settings.REDIS_URL = redis_url
    broker_at(redis_url)
    live = client.get("/health/live")
    assert live.status_code == 200 and live.json() == {"status": "alive"}
    for path in ("/health", "/health/ready"):
        r = client.get(path)
        assert r.status_code == 200, r.content
        body = r.json()
        assert body["status"] == "healthy" and body["database"] == "ok" and "time" in body
        assert body["redis"] == "ok" and body["broker"] == "ok" and body["jobs"] == "ok"
        head = client.head(path)
        assert head.status_code == 200 and head.content == b""
    assert client.head("/health/live").status_code == 200


def test_the_installers_answer_keeps_its_shape(client):
    """docs/API.md §3: 200 with {"status": "healthy", "database": "ok", "time": ...}."""
    r = client.get("/health")
    assert r.status_code == 200 and r["Content-Type"].startswith("application/json")
    assert r.json()["status"] == "healthy" and r.json()["database"] == "ok" and r.json()["time"]


@pytest.mark.parametrize("mode", ["down", "hung"])
def test_redis_down_or_hung_is_degraded_never_503(client, settings, fake, mode):
    fake.set(mode)
    settings.REDIS_URL = f"redis://127.0.0.1:{fake.port}/0"
    broken = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": settings.REDIS_URL,
              "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.25, "SOCKET_TIMEOUT": 0.25}}
    settings.CACHES = {"default": broken, "agents": broken}
    settings.HEALTH_CHECK_TIMEOUT = 0.3
    for path in ("/health", "/health/ready"):
        r = client.get(path)
        assert r.status_code == 200, r.content
        assert r.json()["status"] == "healthy" and r.json()["database"] == "ok" and r.json()["redis"] == "degraded"
        assert client.head(path).status_code == 200
    assert client.get("/health/live").status_code == 200


@pytest.mark.parametrize("mode", ["down", "hung"])
def test_broker_down_or_hung_is_degraded_never_503(client, settings, fake, broker_at, mode):
    fake.set(mode)
    settings.HEALTH_CHECK_TIMEOUT = 0.3
    broker_at(f"redis://127.0.0.1:{fake.port}/0", timeout=1)
    r = client.get("/health/ready")
    assert r.status_code == 200 and r.json()["broker"] == "degraded" and r.json()["database"] == "ok"


def test_a_check_that_never_returns_does_not_hold_the_probe(client, settings, monkeypatch):
    """The probe answers while the check is still blocked: it does not wait for it."""
    check, gate = blocked_forever()
    monkeypatch.setitem(health._checks, "slow", (check, False))
    settings.HEALTH_CHECK_TIMEOUT = 0.2
    try:
        r = client.get("/health")
        assert r.status_code == 200 and r.json()["slow"] == "degraded"
        assert any(t.name == "check-slow" for t in health.checks_in_flight())  # still blocked
        # Probed again while the first one is stuck: it waits for that one (no second thread), still degraded.
        assert client.get("/health").json()["slow"] == "degraded"
        assert sum(t.name == "check-slow" for t in health.checks_in_flight()) == 1
    finally:
        gate.set()


def test_database_down_is_503_without_its_error_text_and_live_still_answers(client, settings, monkeypatch):
    def database_refused():
        raise Exception("secret-host:3306 refused")

    settings.REDIS_URL = ""
    monkeypatch.setitem(health._checks, "database", (database_refused, True))
    for path in ("/health", "/health/ready"):
        r = client.get(path)
        assert r.status_code == 503 and r["Retry-After"]
        assert r.json() == {"status": "unhealthy", "database": "unavailable"}
        assert b"secret-host" not in r.content
        head = client.head(path)
        assert head.status_code == 503 and head.content == b""
    assert client.get("/health/live").status_code == 200


def test_database_hung_is_503_within_the_check_timeout(client, settings, monkeypatch):
    check, gate = blocked_forever()
    monkeypatch.setitem(health._checks, "database", (check, True))
    settings.HEALTH_CHECK_TIMEOUT = 0.2
    try:
        assert client.get("/health/ready").status_code == 503
        assert client.head("/health").status_code == 503
        assert client.get("/health/live").status_code == 200
    finally:
        gate.set()


def test_the_database_check_really_queries(client, monkeypatch):
    """The real check runs SELECT 1 on its own connection in its own thread, and closes it."""
    seen = []
    real = health.database_check

    def spy():
        seen.append(threading.current_thread().name)
        return real()

    monkeypatch.setitem(health._checks, "database", (spy, True))
    assert client.get("/health/ready").status_code == 200
    assert seen == ["check-database"]


@pytest.mark.django_db(transaction=True)  # the check reads on its own connection: the rows are committed
def test_a_late_scheduled_job_is_degraded_not_503(client):
    now = timezone.now()
    JobStat.objects.create(task="agents.periodic.pool_risk_analysis", runs=3,
                           last_success_at=now - timedelta(hours=2))  # every 15 min: late
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["jobs"] == "degraded" and r.json()["database"] == "ok"
    JobStat.objects.filter(pk="agents.periodic.pool_risk_analysis").update(last_success_at=now)
    assert client.get("/health").json()["jobs"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_a_paused_job_is_not_late(client):
    from spotbackend.schedule import periodic_tasks_sync
    from django_celery_beat.models import PeriodicTask

    periodic_tasks_sync()
    PeriodicTask.objects.filter(task="agents.periodic.pool_risk_analysis").update(enabled=False)
    JobStat.objects.create(task="agents.periodic.pool_risk_analysis", runs=3,
                           last_success_at=timezone.now() - timedelta(days=2))
    assert client.get("/health").json()["jobs"] == "ok"


def test_https_redirect_spares_the_probes(settings, client):
    settings.SECURE_SSL_REDIRECT = True
    for path in ("/health", "/health/live", "/health/ready"):
        assert client.get(path).status_code == 200, path


def test_other_methods_get_a_json_405(client):
    for path in ("/health", "/health/live", "/health/ready"):
        r = client.post(path, data="{}", content_type="application/json")
        assert r.status_code == 405 and r.json()["success"] is False, path


def test_the_probe_and_metrics_modules_import_no_app():
    """spotbackend/ imports no app at module level: apps register their checks and collectors."""
    import ast
    from pathlib import Path

    from django.conf import settings

    apps = {"agents", "clients", "savings", "cleanup", "notifications", "ops"}
    for name in ("health.py", "metrics.py", "schedule.py", "views.py"):
        tree = ast.parse((Path(settings.BASE_DIR) / "spotbackend" / name).read_text())
        for node in tree.body:
            modules = [node.module] if isinstance(node, ast.ImportFrom) and node.module else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            assert not {m.split(".")[0] for m in modules} & apps, (name, modules)


def test_a_check_in_flight_is_shared_not_started_twice():
    calls, gate, entered = [], threading.Event(), threading.Event()

    def check():
        calls.append(threading.current_thread().name)
        entered.set()
        assert gate.wait(30)
        return "answer"

    first = []
    t = threading.Thread(target=lambda: first.append(health.call_with_timeout("shared", check, 30)))
    t.start()
    try:
        assert entered.wait(30)
        with pytest.raises(TimeoutError):  # waits for the one in flight, within its own timeout
            health.call_with_timeout("shared", check, 0.1)
        assert calls == ["check-shared"]
    finally:
        gate.set()
        t.join(30)
    assert first == ["answer"]
    assert health.call_with_timeout("shared", check, 30) == "answer" and len(calls) == 2  # a new one later


def test_concurrent_probes_all_answer_200(settings):
    """Several load balancers probing at once: every probe gets the database's answer (a probe that
    found the check in flight used to count it as failed: 503)."""
    from django.test import Client

    settings.REDIS_URL = ""
    results = []

    def probe():
        results.append(Client().get("/health/ready").status_code)

    threads = [threading.Thread(target=probe) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [200] * 12
