"""Start a real gunicorn (configured by gunicorn.conf.py) for a test, and stop exactly that process."""
import contextlib
import os
import subprocess
import sys
import time

import pytest
import requests
from django.conf import settings
from django.db import connection

from spotbackend.tests.faketcp import FakeTCP

DEADLINE_SECONDS = 60


def database_url(host="127.0.0.1", port=None) -> str:
    s = connection.settings_dict
    user = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"mysql://{user}@{host}:{port or s['PORT'] or 3306}/{s['NAME']}"


@contextlib.contextmanager
def gunicorn(tmp_path, **env_overrides):
    if connection.settings_dict["ENGINE"] == "django.db.backends.sqlite3":
        pytest.skip("needs MySQL/MariaDB")
    port = FakeTCP().port  # a free loopback port
    env = {**os.environ, "DATABASE_URL": database_url(), "SPOTBACKEND_VAR_DIR": str(tmp_path), "PORT": str(port),
           "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "4", "REDIS_URL": "", **env_overrides}
    env.pop("TEST_DATABASE_NAME", None)
    log = open(tmp_path / "gunicorn.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
         "spotbackend.wsgi:application"],
        cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            try:
                requests.get(f"{base}/no-such-route", timeout=5)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    log.seek(0)
                    pytest.fail("gunicorn did not start:\n" + log.read()[-3000:])
                time.sleep(0.2)  # polling interval; the deadline bounds the wait
        yield base, port
    finally:
        process_stop(proc)
        log.close()


def process_stop(proc: subprocess.Popen) -> None:
    """Stop a process this test started: SIGTERM, then SIGKILL if it has not exited within 20 s."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
