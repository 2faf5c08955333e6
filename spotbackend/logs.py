"""Logs that follow one agent's call across web hosts and the worker (docs/OPERATIONS.md, "Logs").

* A request id per HTTP request: the caller's (or the proxy's) `X-Request-ID` when it is safe (1-64
  characters of letters, digits, `.`, `_`, `:`, `-`), else a new one; echoed in the response's
  `X-Request-ID` header (`RequestIdMiddleware`, first in MIDDLEWARE).
* The call's agent id (from the URL) and client id (set by the token authentication) are bound next to
  it in context variables; `ContextFilter` (on the console handler) adds `request_id`, `agent_id`,
  `client_id` and `task_id` to every log record, whoever logs it.
* A Celery task published during a request carries the request id in its message headers
  (`before_task_publish`); the worker binds it and the task id while the task runs (`task_prerun`).
* `LOG_FORMAT=json`: one JSON object per line (python-json-logger), also in the Celery worker and beat
  (their handlers get the same formatter). `text` (the default) keeps plain lines.
* `SENTRY_DSN`: errors (logged errors and unhandled exceptions, in the web and the worker) go to Sentry,
  tagged with the same ids; without it nothing is sent anywhere.

This module imports no app (the project package must not)."""
import contextvars
import logging
import re
import secrets

from django.utils.log import log_response

HEADER = "X-Request-ID"
META_KEY = "HTTP_X_REQUEST_ID"
# The Celery message header that carries the request id from the publisher to the worker.
TASK_HEADER = "x_request_id"
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
FIELDS = ("request_id", "agent_id", "client_id", "task_id")

_vars = {name: contextvars.ContextVar(f"spotbackend_{name}", default=None) for name in FIELDS}


def request_id_from(value) -> str:
    """The caller's request id when it is safe to log and echo, else a new one (32 hex digits)."""
    if isinstance(value, str) and REQUEST_ID_RE.fullmatch(value):
        return value
    return secrets.token_hex(16)


def bind(**values) -> dict:
    """Bind ids to the current context (thread or task); returns the tokens to give to `unbind`."""
    return {name: _vars[name].set(None if value is None else str(value)) for name, value in values.items()}


def unbind(tokens: dict) -> None:
    for name, token in tokens.items():
        _vars[name].reset(token)


def current() -> dict:
    return {name: var.get() for name, var in _vars.items()}


def current_request_id() -> str | None:
    return _vars["request_id"].get()


class ContextFilter(logging.Filter):
    """Adds request_id, agent_id, client_id and task_id (None when unbound) to every record."""

    def filter(self, record):
        for name, var in _vars.items():
            if not hasattr(record, name):
                setattr(record, name, var.get())
        return True


class RequestIdMiddleware:
    """First middleware: binds the request id (and, once known, the agent id) for the request's logs,
    and echoes the id in the response header, on every answer (errors included)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_from(request.META.get(META_KEY))
        request.request_id = request_id
        tokens = bind(request_id=request_id, agent_id=None, client_id=None)
        try:
            response = self.get_response(request)
            response[HEADER] = request_id
            if response.status_code >= 400:
                # Django logs 4xx/5xx answers (logger django.request) after the middleware returned,
                # when the ids are unbound: log it here, once (Django skips an answer already logged).
                log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
            return response
        finally:
            unbind(tokens)

    def process_view(self, request, view_func, view_args, view_kwargs):
        agent_id = view_kwargs.get("agent_id")
        if agent_id is not None:
            bind(agent_id=agent_id[:64])  # reset with the rest when the request ends
        return None


def bind_client(client) -> None:
    """Called by the token authentication once the caller is known."""
    if _vars["request_id"].get() is not None:
        bind(client_id=getattr(client, "pk", None))


# --- Celery -----------------------------------------------------------------------------------------


def _on_publish(sender=None, headers=None, **kwargs):
    request_id = current_request_id()
    if request_id is not None and headers is not None:
        headers.setdefault(TASK_HEADER, request_id)


_task_tokens = {}


def _on_prerun(sender=None, task_id=None, task=None, **kwargs):
    request = getattr(task, "request", None)
    request_id = None
    if request is not None:
        # A worker merges custom message headers into the request; an eager apply(headers=) keeps them apart.
        request_id = request.get(TASK_HEADER) or (getattr(request, "headers", None) or {}).get(TASK_HEADER)
    _task_tokens[task_id] = bind(task_id=task_id, request_id=request_id_from(request_id) if request_id else None,
                                 agent_id=None, client_id=None)


def _on_postrun(sender=None, task_id=None, **kwargs):
    tokens = _task_tokens.pop(task_id, None)
    if tokens is not None:
        try:
            unbind(tokens)
        except ValueError:  # bound in another context (should not happen): leave it
            pass


def _json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    conf = json_formatter_config()
    return JsonFormatter(conf["fmt"], rename_fields=conf["rename_fields"], timestamp=conf["timestamp"])


def _after_setup_logger(logger=None, **kwargs):
    """Celery's worker and beat set up their own handlers (root and task loggers): give them the ids,
    and with LOG_FORMAT=json the JSON formatter."""
    from django.conf import settings

    if logger is None:
        return
    for handler in logger.handlers:
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
        if getattr(settings, "LOG_FORMAT", "text") == "json":
            handler.setFormatter(_json_formatter())


def connect_celery() -> None:
    from celery import signals

    signals.before_task_publish.connect(_on_publish, weak=False, dispatch_uid="spotbackend.logs.publish")
    signals.task_prerun.connect(_on_prerun, weak=False, dispatch_uid="spotbackend.logs.prerun")
    signals.task_postrun.connect(_on_postrun, weak=False, dispatch_uid="spotbackend.logs.postrun")
    signals.after_setup_logger.connect(_after_setup_logger, weak=False, dispatch_uid="spotbackend.logs.setup")
    signals.after_setup_task_logger.connect(_after_setup_logger, weak=False,
                                            dispatch_uid="spotbackend.logs.setup_task")


# --- Settings ---------------------------------------------------------------------------------------

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
JSON_FIELDS = "%(levelname)s %(name)s %(message)s %(process)d %(thread)d"


def json_formatter_config() -> dict:
    # Fields of every JSON line, besides request_id, agent_id, client_id and task_id (ContextFilter)
    # and any `extra` the call passed; exceptions come as exc_info (the traceback as one string).
    # "time": ISO 8601 in UTC with microseconds.
    return {"fmt": JSON_FIELDS, "rename_fields": {"levelname": "level", "name": "logger"}, "timestamp": "time"}


def logging_config(*, fmt: str, level: str) -> dict:
    """Django's LOGGING for LOG_FORMAT `text` or `json`."""
    if fmt not in ("text", "json"):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"LOG_FORMAT must be 'text' or 'json', not {fmt!r}")
    formatters = {
        "text": {"format": TEXT_FORMAT},
        "json": {"()": "pythonjsonlogger.json.JsonFormatter", **json_formatter_config()},
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "spotbackend.logs.ContextFilter"}},
        "formatters": formatters,
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": fmt, "filters": ["context"]}},
        "root": {"handlers": ["console"], "level": level},
    }


def _sentry_before_send(event, hint):
    tags = event.setdefault("tags", {})
    for name, value in current().items():
        if value is not None:
            tags.setdefault(name, value)
    return event


def sentry_init(*, dsn: str, environment: str, release: str, traces_sample_rate: float) -> bool:
    """Send errors to Sentry when a DSN is set; nothing (no client at all) otherwise."""
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment or None,
        release=release or None,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,  # no client tokens, cookies or addresses
        before_send=_sentry_before_send,
    )
    return True


# --- Gunicorn (gunicorn.conf.py with LOG_FORMAT=json) ------------------------------------------------


def _gunicorn_access_formatter():
    from pythonjsonlogger.json import JsonFormatter

    class GunicornAccessJsonFormatter(JsonFormatter):
        """One access line per request as JSON fields (gunicorn passes its atoms as the record's args)."""

        FIELDS = {"remote_addr": "h", "method": "m", "path": "U", "query": "q", "status": "s",
                  "bytes_sent": "B", "duration_ms": "M", "user_agent": "a", "request_id": "{x-request-id}o"}

        def add_fields(self, log_record, record, message_dict):
            super().add_fields(log_record, record, message_dict)
            atoms = record.args if hasattr(record.args, "__getitem__") and not isinstance(record.args, tuple) else None
            if atoms is not None:
                for name, atom in self.FIELDS.items():
                    value = atoms[atom]
                    if name in ("status", "bytes_sent", "duration_ms"):
                        try:
                            value = int(value)
                        except (TypeError, ValueError):
                            pass
                    log_record[name] = None if value == "-" else value

    conf = json_formatter_config()
    return GunicornAccessJsonFormatter(conf["fmt"], rename_fields=conf["rename_fields"], timestamp=conf["timestamp"])


def gunicorn_logconfig() -> dict:
    """gunicorn's `logconfig_dict` for LOG_FORMAT=json: its own lines (start, worker exits, errors) and
    one access line per request (with the request id) as JSON, like the app's."""
    return {
        "root": {"level": "INFO", "handlers": []},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["json_error"], "propagate": False,
                               "qualname": "gunicorn.error"},
            "gunicorn.access": {"level": "INFO", "handlers": ["json_access"], "propagate": False,
                                "qualname": "gunicorn.access"},
        },
        "handlers": {
            "json_error": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
            "json_access": {"class": "logging.StreamHandler", "formatter": "json_access",
                            "stream": "ext://sys.stdout"},
        },
        "formatters": {
            "json": {"()": _json_formatter},
            "json_access": {"()": _gunicorn_access_formatter},
        },
    }
