"""pytest plugin (`-p spotbackend.pytest_env` in pytest.ini), imported before Django's settings are read.

SIGTERM stops the run like Ctrl-C (see below).

The settings refuse to start on the development SECRET_KEY with DEBUG off (deploy safety); the tests
run with DEBUG off like production, so they bring their own key.
"""
import os
import signal


def _stop_like_ctrl_c(signum, frame):
    raise KeyboardInterrupt


# A SIGTERM (from `make test` being stopped) ends the run like Ctrl-C: fixtures and finally blocks run,
# so processes started by live tests are stopped too.
signal.signal(signal.SIGTERM, _stop_like_ctrl_c)

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-" + "0123456789abcdefghijklmnopqrstuvwxyz")
# Servers the live tests start (gunicorn, Celery) inherit this: production has no default hosts.
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
# Clients' webhook endpoints may point at the tests' own listeners on 127.0.0.1 (plain http).
os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
os.environ.setdefault("WEBHOOK_ALLOW_HTTP", "true")
