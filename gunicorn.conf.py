"""Gunicorn settings for every way this project starts it (`make run`, Docker, production, the
benchmarks): gunicorn reads ./gunicorn.conf.py from the working directory (or `-c gunicorn.conf.py`).
Command-line flags still override these. Environment overrides: PORT, WEB_CONCURRENCY,
GUNICORN_THREADS, GUNICORN_TIMEOUT, GUNICORN_GRACEFUL_TIMEOUT.

Request limits are raised to gunicorn's maxima so that long URLs and large headers reach Django (which
answers JSON); anything beyond is refused by gunicorn itself, and `write_error` below makes that
answer JSON too (414 request line, 431 headers, 400 malformed), since agents and installers read no HTML."""
import json
import os
from pathlib import Path

from gunicorn import util

_var_dir = Path(os.environ.get("SPOTBACKEND_VAR_DIR") or Path(__file__).resolve().parent / "var")

bind = [f"0.0.0.0:{os.environ.get('PORT', '5000')}"]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# gthread with termination notices and rebalance recommendations served first (spotbackend/gunicorn_worker.py).
worker_class = "spotbackend.gunicorn_worker.UrgentFirstWorker"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# A stop (SIGTERM) waits this long for requests in flight, then closes held connections.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "5"))
accesslog = "-"

# Gunicorn 25+ opens a control socket at $XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl,
# shared by every gunicorn of the user: a second one replaces (and on exit deletes) the first one's.
# Ours lives in this instance's var directory (`gunicornc -s var/gunicorn.ctl`).
control_socket = str(_var_dir / "gunicorn.ctl")

limit_request_line = 8190  # gunicorn's maximum (bytes of "GET /path?query HTTP/1.1")
limit_request_fields = 200
limit_request_field_size = 16384


def _write_json_error(sock, status_int, reason, mesg):
    body = json.dumps({"success": False, "error": f"{reason}: {mesg}" if mesg else reason}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin1")
    util.write_nonblock(sock, head + body)


# Workers are forked from the process that read this file, so they inherit the JSON error writer.
util.write_error = _write_json_error


# Metrics (spotbackend/metrics.py): every worker writes its counters under PROMETHEUS_MULTIPROC_DIR and
# /metrics adds them up; set before any worker imports prometheus_client. A dead worker's live gauges go.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_var_dir / "prometheus"))
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
