"""Prometheus metrics (docs/OPERATIONS.md, "Health and metrics"): every metric the server exports is
declared in this module, under the `spotbackend_` prefix, with bounded labels.

Adding one is two lines: declare it here (`Counter`, `Histogram`, or `Gauge` with a `multiprocess_mode`
such as "livesum", each with `namespace=NAMESPACE, registry=REGISTRY`), then `.labels(...).inc()` /
`.observe()` / `.set()` where it happens. Values that come from the database (the fleet,
the outbox, the scheduled jobs) are computed by periodic tasks or read at scrape time by a collector that
an app registers with `register_collector` (this package imports no app).

Under gunicorn's several processes the counters and histograms live in files under
PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode; gunicorn.conf.py sets it and marks a
dead worker's files), and `/metrics` adds up every process. Without that variable (tests, one process)
the process's own registry is served.

`/metrics` is never public: with METRICS_TOKEN unset it answers 404; otherwise only a caller sending
`Authorization: Bearer <METRICS_TOKEN>` gets it (others: 404 too, nothing tells them it exists).
"""
import functools
import hmac
import logging
import os
import time
from typing import Callable, Iterable

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

logger = logging.getLogger(__name__)

NAMESPACE = "spotbackend"

# Request latency buckets (seconds): agent calls answer in a few milliseconds, a hung dependency in seconds.
LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# This process's metrics (not prometheus_client's default registry, whose process_/python_ metrics are
# not ours): served as they are with one process, read from PROMETHEUS_MULTIPROC_DIR's files otherwise.
REGISTRY = CollectorRegistry(auto_describe=True)

# --- declared metrics ---------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "http_requests", "HTTP requests answered, by URL route (the pattern, never the raw path), method and status.",
    ["route", "method", "status"], namespace=NAMESPACE, registry=REGISTRY,
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds", "Time to answer an HTTP request, by URL route and method.",
    ["route", "method"], namespace=NAMESPACE, buckets=LATENCY_BUCKETS, registry=REGISTRY,
)
NOTICES = Counter(
    "notices", "Termination notices and rebalance recommendations handled (repeats included), by kind and "
    "the action answered.", ["kind", "action"], namespace=NAMESPACE, registry=REGISTRY,
)
NOTICE_DECISION_DURATION = Histogram(
    "notice_decision_seconds", "Time from a notice reaching the service to its decision being committed, by kind.",
    ["kind"], namespace=NAMESPACE, buckets=LATENCY_BUCKETS, registry=REGISTRY,
)
NOTICE_ERRORS = Counter(
    "notice_errors", "Notices whose handling raised (the agent got an error instead of a decision), by kind.",
    ["kind"], namespace=NAMESPACE, registry=REGISTRY,
)
DECISIONS = Counter(
    "decisions", "Automatic decisions recorded, by kind and action.", ["kind", "action"],
    namespace=NAMESPACE, registry=REGISTRY,
)
NOTIFICATION_PUBLISHES = Counter(
    "notification_publishes", "Attempts to hand a notification's delivery to the broker, by outcome "
    "(published, failed, skipped: the broker failed recently).", ["outcome"],
    namespace=NAMESPACE, registry=REGISTRY,
)

CACHE_LOOKUPS = Counter(
    "cache_lookups", "Reads of the agents' cache (agents/cache.py), by entry and result (hit, miss, error: "
    "Redis failed or the breaker is open). Hit ratio: hit / (hit + miss + error).", ["entry", "result"],
    namespace=NAMESPACE, registry=REGISTRY,
)
CACHE_BREAKER_OPEN = Gauge(
    "cache_breaker_open", "1 while the circuit breaker in front of the agents' cache is open in some web process.",
    namespace=NAMESPACE, registry=REGISTRY, multiprocess_mode="max",
)
CACHE_BREAKER_OPENINGS = Counter(
    "cache_breaker_openings", "Times the circuit breaker in front of the agents' cache opened (Redis failed); "
    "while open every read is a miss for 5 s.", namespace=NAMESPACE, registry=REGISTRY,
)


def notice_handler(kind: str):
    """Decorator for a notice's service function: counts it by the action of the decision it returns and
    times it (NOTICES, NOTICE_DECISION_DURATION). A failure counts in NOTICE_ERRORS; a domain error (the
    agent is gone: a 4xx for the caller) does not."""
    from spotbackend.exceptions import ApplicationError

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
            except ApplicationError:
                raise
            except Exception:
                NOTICE_ERRORS.labels(kind).inc()
                raise
            NOTICE_DECISION_DURATION.labels(kind).observe(time.perf_counter() - started)
            NOTICES.labels(kind, getattr(result, "action", "") or "none").inc()
            return result
        return wrapper
    return decorate


def decisions_count(decisions: Iterable) -> None:
    for decision in decisions:
        DECISIONS.labels(decision.kind, decision.action).inc()


# --- collectors read at scrape time ---------------------------------------------------------------------
_collectors: list[Callable[[], Iterable]] = []


def register_collector(collect: Callable[[], Iterable]) -> None:
    """`collect()` yields prometheus_client metric families (e.g. GaugeMetricFamily) at every scrape.
    It runs within METRICS_COLLECT_TIMEOUT; one that fails or hangs is left out of that scrape (logged)."""
    if collect not in _collectors:
        _collectors.append(collect)


def _celery_queue_families():
    from spotbackend.health import broker_queue_length
    from spotbackend.celery import app

    queue = app.conf.task_default_queue
    length = GaugeMetricFamily(f"{NAMESPACE}_celery_queue_length", "Messages waiting in the Celery queue "
                               "(absent when the broker does not answer).", labels=["queue"])
    length.add_metric([queue], broker_queue_length(queue))
    yield length


register_collector(_celery_queue_families)


class _AppCollectors:
    """The registered collectors, each bounded in time (spotbackend/health.py call_with_timeout)."""

    def collect(self):
        from spotbackend.health import call_with_timeout

        up = GaugeMetricFamily(f"{NAMESPACE}_metrics_collector_up", "1 when this collector answered in "
                               "this scrape, 0 when it failed or timed out.", labels=["collector"])
        for collect in list(_collectors):
            name = getattr(collect, "__qualname__", repr(collect))
            try:
                families = call_with_timeout(f"metrics:{name}", lambda c=collect: list(c()),
                                             settings.METRICS_COLLECT_TIMEOUT)
            except Exception as exc:
                logger.warning("metrics: collector %s failed: %s", name, exc)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up


class _ThisProcess:
    def collect(self):
        return REGISTRY.collect()


def scrape() -> bytes:
    """The exposition text: every process's counters and histograms, then the registered collectors."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(_AppCollectors())
    return generate_latest(registry)


def _not_found():
    return JsonResponse({"success": False, "error": "Not found."}, status=404)


def metrics_view(request):
    """GET /metrics for Prometheus, only with `Authorization: Bearer <METRICS_TOKEN>`."""
    token = settings.METRICS_TOKEN
    if not token:
        return _not_found()
    sent = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = sent.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
        return _not_found()
    if request.method not in ("GET", "HEAD"):
        return JsonResponse({"success": False, "error": f'Method "{request.method}" not allowed.'}, status=405,
                            headers={"Allow": "GET, HEAD"})
    body = scrape()
    response = HttpResponse(b"" if request.method == "HEAD" else body, content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response


class MetricsMiddleware:
    """Counts and times every request by route (the URL pattern that matched; `unmatched` when none did),
    method and status. First in MIDDLEWARE: the time includes every other middleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = (match.route or match.view_name) if match is not None else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        HTTP_REQUESTS.labels(route, method, str(response.status_code)).inc()
        HTTP_REQUEST_DURATION.labels(route, method).observe(time.perf_counter() - started)
        return response
