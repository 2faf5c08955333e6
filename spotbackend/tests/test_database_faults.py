"""A database that is down or hung: every route answers 503 JSON with Retry-After (or its usual
non-database answer), the server keeps answering, and it recovers by itself. A live gunicorn (from
gunicorn.conf.py) talks to the test database through a FakeTCP on a private loopback port."""
import concurrent.futures
import time

import pytest
import requests
from django.db import connection

from spotbackend.db.base import CircuitBreaker
from spotbackend.tests.faketcp import FakeTCP
from spotbackend.tests.live import DEADLINE_SECONDS, database_url, gunicorn

@pytest.fixture
def server(tmp_path):
    s = connection.settings_dict
    fake = FakeTCP(target=(s["HOST"] or "127.0.0.1", int(s["PORT"] or 3306)))
    fake.set("up")
    env = {"DATABASE_URL": database_url(port=fake.port), "DB_CONNECT_TIMEOUT": "1", "DB_READ_TIMEOUT": "1",
           "DB_WRITE_TIMEOUT": "1", "CONN_MAX_AGE": "60"}
    try:
        with gunicorn(tmp_path, **env) as (base, _):
            yield base, fake
    finally:
        fake.stop()


ROUTES = [
    ("GET", "/health", {}),
    ("GET", "/api/client/validate", {"Authorization": "Bearer not-a-real-token"}),
    ("POST", "/api/agents/register", {"Authorization": "Bearer not-a-real-token"}),
    ("GET", "/admin/", {"Cookie": "sessionid=abcdefghijklmnopqrstuvwxyz012345"}),  # not DRF
]


def _call(base, method, path, headers):
    started = time.monotonic()
    r = requests.request(method, base + path, headers={**headers, "Content-Type": "application/json"},
                         data="{}", timeout=30)
    return r, time.monotonic() - started


def _assert_unavailable(base, label):
    for method, path, headers in ROUTES:
        r, took = _call(base, method, path, headers)
        print(f"{label}: {method} {path} -> {r.status_code} in {took * 1000:.0f} ms")
        assert r.status_code == 503, (path, r.status_code, r.text[:300])
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.headers["Retry-After"].isdigit()
    # Routes that need no database keep their usual answer.
    r, _ = _call(base, "GET", "/no/such/route", {})
    assert r.status_code == 404 and r.json()["success"] is False


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_database_hung_then_down_then_back(server):
    base, fake = server
    r, _ = _call(base, "GET", "/api/client/validate", {"Authorization": "Bearer not-a-real-token"})
    assert r.status_code in (401, 403)  # the database answers: a wrong token is refused

    fake.set("hung")
    _assert_unavailable(base, "hung")
    # Many at once on a hung database: all answered (the breaker lets one request per process wait).
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: _call(base, "GET", "/health", {}), range(16)))
    print("16 concurrent /health on a hung database, slowest ms:", max(t for _, t in results) * 1000)
    assert {r.status_code for r, _ in results} == {503}

    fake.set("down")
    _assert_unavailable(base, "down")

    fake.set("up")
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if requests.get(f"{base}/health", timeout=30).status_code == 200:
            break
        time.sleep(0.5)  # polling interval; the deadline bounds the wait
    r, _ = _call(base, "GET", "/health", {})
    assert r.status_code == 200 and r.json()["database"] == "ok"
    r, _ = _call(base, "GET", "/api/client/validate", {"Authorization": "Bearer not-a-real-token"})
    assert r.status_code in (401, 403)


def test_breaker_fails_fast_then_lets_one_probe_through(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("spotbackend.db.base.time.monotonic", lambda: clock[0])
    b = CircuitBreaker(cooldown=5)
    assert b.before_connect()
    b.failure()
    assert not b.before_connect()  # open: fail at once
    clock[0] += 5
    assert b.before_connect()  # the one probe
    assert not b.before_connect()  # others still fail fast while it runs
    b.failure()
    assert not b.before_connect()
    clock[0] += 5
    assert b.before_connect()
    b.success()
    assert b.before_connect() and b.before_connect() and not b.is_open


def test_drf_route_maps_database_errors_to_503(api, monkeypatch):
    from django.db import OperationalError

    def broken(*args, **kwargs):
        raise OperationalError(2013, "Lost connection to server during query")

    monkeypatch.setattr("clients.authentication.ClientTokenAuthentication.authenticate", broken)
    r = api.get("/api/client/validate")
    assert r.status_code == 503 and r["Retry-After"] == "5"
    assert r.json() == {"success": False, "error": "Database temporarily unavailable; retry shortly."}


def test_non_drf_route_maps_database_errors_to_503(admin_client, monkeypatch):
    from django.db import InterfaceError

    def broken(*args, **kwargs):
        raise InterfaceError(0, "")

    monkeypatch.setattr("django.contrib.admin.sites.AdminSite.has_permission", broken)
    r = admin_client.get("/admin/")
    assert r.status_code == 503 and r["Retry-After"] == "5"
