"""Gunicorn settings for every way this project starts it (`make run`, Docker, production): gunicorn
reads ./gunicorn.conf.py from the working directory. Command-line flags still override these.
"""
import os
from pathlib import Path

_var_dir = Path(os.environ.get("SPOTBACKEND_VAR_DIR") or Path(__file__).resolve().parent / "var")

bind = [f"0.0.0.0:{os.environ.get('PORT', '5000')}"]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 60
# A stop (SIGTERM) waits this long for requests in flight, then closes held connections.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "5"))
accesslog = "-"

# Gunicorn 25+ opens a control socket at $XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl,
# shared by every gunicorn of the user: a second one replaces (and on exit deletes) the first one's.
# Ours lives in this instance's var directory (`gunicornc -s var/gunicorn.ctl`).
control_socket = str(_var_dir / "gunicorn.ctl")
