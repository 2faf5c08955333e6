"""Health probes that load balancers can use (docs/OPERATIONS.md, "Health and metrics").

- `GET/HEAD /health/live`: the process answers; no dependency is touched.
- `GET/HEAD /health/ready`: this host can serve agents, i.e. the database answers within
  HEALTH_CHECK_TIMEOUT; 503 JSON with Retry-After when it does not.
- `GET/HEAD /health`: what the installers read (docs/API.md §3), same rule as ready: 200 whenever
  agents can be served.

Redis, the Celery broker and the scheduled jobs only accelerate or run later: a GET reports them as
`ok` / `degraded` in the body with a 200 while the database answers, so a cache outage never takes every
host out of rotation. HEAD checks the database only.

Every check runs in its own daemon thread and the probe waits for it at most HEALTH_CHECK_TIMEOUT
seconds (the checks run side by side: a probe never waits longer than that, whatever hangs). Concurrent
probes share the check in flight rather than start their own, so a hung dependency holds at most one
thread per check and process.

Apps add their own non-critical checks with `register_check` (e.g. the scheduled jobs, ops/apps.py):
this package imports no app.
"""
import logging
import threading
from typing import Callable

from django.conf import settings
from django.db import connections
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.response import Response

from spotbackend.exceptions import RETRY_AFTER_SECONDS

logger = logging.getLogger(__name__)

OK, DEGRADED, UNAVAILABLE = "ok", "degraded", "unavailable"
CHECK = [OK, DEGRADED, UNAVAILABLE]

_running: dict[str, tuple[threading.Thread, dict]] = {}
_running_lock = threading.Lock()


def call_with_timeout(name: str, fn: Callable[[], object], timeout: float):
    """fn() in a daemon thread, waited for at most `timeout` seconds. Returns its result, or raises
    TimeoutError (no answer in time) or whatever fn raised. One call per name at a time: a caller that
    finds the same check in flight (a concurrent probe, or one stuck from an earlier probe) waits for that
    one, within its own timeout, instead of starting another. Database connections the thread opened are
    closed when fn returns."""
    with _running_lock:
        running = _running.get(name)
        if running is None or not running[0].is_alive():
            box: dict = {}

            def run():
                try:
                    box["result"] = fn()
                except BaseException as exc:  # handed to the callers
                    box["error"] = exc
                finally:
                    connections.close_all()  # only this thread's connections
                    with _running_lock:
                        if _running.get(name, (None,))[0] is threading.current_thread():
                            del _running[name]

            running = (threading.Thread(target=run, name=f"check-{name}", daemon=True), box)
            _running[name] = running
            running[0].start()
    thread, box = running
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"{name}: no answer within {timeout} s")
    if "error" in box:
        raise box["error"]
    return box.get("result")


def checks_in_flight() -> list[threading.Thread]:
    """The check threads still running (e.g. stuck on a hung dependency until its socket timeout)."""
    with _running_lock:
        return [t for t, _ in _running.values() if t.is_alive()]


# --- the checks -------------------------------------------------------------------------------------

def database_check() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def redis_check() -> None:
    """Redis answers, through the connection Django's cache uses (django-redis; its socket timeouts)."""
    from django_redis import get_redis_connection

    get_redis_connection("default").ping()


def broker_queue_length(queue: str | None = None) -> int:
    """Messages waiting in a Celery queue (the default one), asked of the broker on a new connection
    with the broker's own short timeouts (settings: CELERY_BROKER_*)."""
    from kombu.exceptions import ChannelError

    from spotbackend.celery import app

    queue = queue or app.conf.task_default_queue
    with app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=0)  # one attempt: a broker that is down fails at once
        try:
            return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
        except ChannelError:  # the queue was never declared: nothing waits in it
            return 0


def broker_check() -> None:
    broker_queue_length()


# name -> (function, critical). Critical: 503 when it fails. Non-critical: "degraded" in the body.
_checks: dict[str, tuple[Callable[[], object], bool]] = {"database": (database_check, True)}


def register_check(name: str, fn: Callable[[], object], *, critical: bool = False) -> None:
    """Add a check to GET /health and /health/ready. `fn` raises (or returns False) when unhealthy."""
    _checks[name] = (fn, critical)


def _enabled_checks(names=None) -> dict[str, tuple[Callable[[], object], bool]]:
    checks = dict(_checks)
    if settings.REDIS_URL:
        checks.setdefault("redis", (redis_check, False))
    checks.setdefault("broker", (broker_check, False))
    if names is not None:
        checks = {k: v for k, v in checks.items() if k in names}
    return checks


def run_checks(names=None) -> dict[str, str]:
    """Run the checks side by side; each answer within HEALTH_CHECK_TIMEOUT: {name: ok|degraded|unavailable}."""
    timeout = settings.HEALTH_CHECK_TIMEOUT
    checks = _enabled_checks(names)
    results: dict[str, str] = {}
    threads = []

    def one(name, fn, critical):
        try:
            ok = call_with_timeout(name, fn, timeout) is not False
        except Exception as exc:  # any failure is "not healthy"; the text goes to the log only
            logger.warning("health: %s check failed: %s", name, exc)
            ok = False
        results[name] = OK if ok else (UNAVAILABLE if critical else DEGRADED)

    for name, (fn, critical) in checks.items():
        t = threading.Thread(target=one, args=(name, fn, critical), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join()  # each returns within `timeout` (call_with_timeout)
    return {name: results[name] for name in checks}


# --- the views --------------------------------------------------------------------------------------

class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["healthy", "unhealthy"])
    database = serializers.ChoiceField(choices=CHECK)
    redis = serializers.ChoiceField(choices=CHECK, required=False,
                                    help_text="Present when REDIS_URL is set; `degraded` does not make the answer 503.")
    broker = serializers.ChoiceField(choices=CHECK, required=False, help_text="The Celery broker.")
    jobs = serializers.ChoiceField(choices=CHECK, required=False,
                                   help_text="Every enabled scheduled job succeeded within its window.")
    time = serializers.DateTimeField(required=False, help_text="Present when healthy.")


class LiveSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["alive"])


def _probe(request, *, ok_status: str, bad_status: str) -> Response:
    critical = [name for name, (_, crit) in _enabled_checks().items() if crit]
    results = run_checks(critical if request.method == "HEAD" else None)
    healthy = all(results[name] == OK for name in critical)
    retry = {} if healthy else {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if request.method == "HEAD":
        return Response(status=200 if healthy else 503, headers=retry)  # a HEAD answer carries no body
    if not healthy:
        # Only the critical checks: what made this host unable to serve.
        body = {name: results[name] for name in critical}
        return Response({"status": bad_status, **body}, status=503, headers=retry)
    return Response({"status": ok_status, **results, "time": timezone.now()})


@extend_schema(responses={200: HealthSerializer, 503: HealthSerializer}, auth=[])
@api_view(["GET", "HEAD"])
@authentication_classes([])
@permission_classes([])
def health(request):
    """The installers abort unless this answers 200 (docs/API.md §3): 200 whenever this host can serve
    agents (the database answers). GET adds Redis, the broker and the scheduled jobs as ok/degraded.
    Names each dependency, never its error text (that goes to the log)."""
    return _probe(request, ok_status="healthy", bad_status="unhealthy")


@extend_schema(responses={200: HealthSerializer, 503: HealthSerializer}, auth=[])
@api_view(["GET", "HEAD"])
@authentication_classes([])
@permission_classes([])
def health_ready(request):
    """Readiness for load balancers: 200 while the database answers within HEALTH_CHECK_TIMEOUT, else
    503 (with Retry-After). Redis, the broker and the jobs are reported, never fail it."""
    return _probe(request, ok_status="healthy", bad_status="unhealthy")


@extend_schema(responses={200: LiveSerializer}, auth=[])
@api_view(["GET", "HEAD"])
@authentication_classes([])
@permission_classes([])
def health_live(request):
    """Liveness: the process answers. Touches no dependency."""
    if request.method == "HEAD":
        return Response(status=200)
    return Response({"status": "alive"})
