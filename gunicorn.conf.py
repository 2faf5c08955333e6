"""Gunicorn settings for every way this project starts it (`make run`, Docker, production, the
benchmarks): gunicorn reads ./gunicorn.conf.py from the working directory (or `-c gunicorn.conf.py`).
Command-line flags still override these. Environment overrides: PORT, WEB_CONCURRENCY, GUNICORN_THREADS.

In production gunicorn runs behind a buffering reverse proxy (deploy/nginx/), which holds the
agents' slow or idle connections, limits request sizes and answers its own errors in JSON; gunicorn's
few threads only ever see whole requests (docs/OPERATIONS.md)."""
import os
from pathlib import Path

_var_dir = Path(os.environ.get("SPOTBACKEND_VAR_DIR") or Path(__file__).resolve().parent / "var")

bind = [f"0.0.0.0:{os.environ.get('PORT', '5000')}"]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
timeout = 60
# A stop (SIGTERM) waits this long for requests in flight, then closes held connections.
graceful_timeout = 5
accesslog = "-"
# Long URLs and large headers reach Django, which answers JSON; beyond these maxima gunicorn refuses
# (the proxy in front has the same limits and answers those refusals in JSON: deploy/nginx/).
limit_request_line = 8190
limit_request_fields = 200
limit_request_field_size = 16384
# Gunicorn's default access line plus the request id the app answered with (X-Request-ID; spotbackend/logs.py).
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %({x-request-id}o)s'
if os.environ.get("LOG_FORMAT", "text").strip().lower() == "json":
    # Gunicorn's own and access lines as JSON objects too, like the app's (spotbackend/logs.py).
    from spotbackend.logs import gunicorn_logconfig

    logconfig_dict = gunicorn_logconfig()

# Gunicorn 25+ opens a control socket at $XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl,
# shared by every gunicorn of the user: a second one replaces (and on exit deletes) the first one's.
# Ours lives in this instance's var directory (`gunicornc -s var/gunicorn.ctl`).
control_socket = str(_var_dir / "gunicorn.ctl")

# Metrics (spotbackend/metrics.py): every worker writes its counters under PROMETHEUS_MULTIPROC_DIR and
# /metrics adds them up; set before any worker imports prometheus_client. A dead worker's live gauges go.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_var_dir / "prometheus"))
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
