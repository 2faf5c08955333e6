"""Structured logs (spotbackend/logs.py): the request id in and out, the call's ids on every record,
JSON lines, the request id carried into Celery tasks, Sentry only with SENTRY_DSN."""
import gzip
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from celery import signals
from django.conf import settings

from agents.tests.factories import AgentFactory
from conftest import bearer
from spotbackend import logs
from spotbackend.celery import app as celery_app


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []
        self.addFilter(logs.ContextFilter())

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def captured():
    handler = _Capture()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)


@pytest.mark.parametrize("sent", ["abc-123", "f" * 64, "req.1:2_x"])
def test_a_safe_request_id_is_kept_and_echoed(client, sent):
    response = client.get("/no-such-route", HTTP_X_REQUEST_ID=sent)
    assert response["X-Request-ID"] == sent


@pytest.mark.parametrize("sent", [None, "", "a" * 65, "bad id", "x\ny", "<script>", "é"])
def test_a_missing_or_unsafe_request_id_is_replaced(client, sent):
    extra = {} if sent is None else {"HTTP_X_REQUEST_ID": sent}
    response = client.get("/no-such-route", **extra)
    made = response["X-Request-ID"]
    assert made != sent and len(made) == 32 and int(made, 16) >= 0


def test_every_record_of_an_agent_call_carries_request_agent_and_client_ids(db, captured, client_obj):
    agent = AgentFactory(client=client_obj)
    api = bearer(client_obj)
    # An unknown command: the answer is a 404 the server logs (django.request, a warning).
    response = api.post(f"/api/agents/{agent.pk}/commands/{uuid.uuid4()}/executed", {"success": True},
                        format="json", HTTP_X_REQUEST_ID="trace-me-1")
    assert response.status_code == 404 and response["X-Request-ID"] == "trace-me-1"
    mine = [r for r in captured if r.request_id == "trace-me-1"]
    assert mine, [r.getMessage() for r in captured]
    assert all(r.agent_id == str(agent.pk) and r.client_id == str(client_obj.pk) for r in mine)
    assert any(r.name == "django.request" and r.levelno == logging.WARNING for r in mine)
    # Nothing leaks into the next call or outside a request.
    logging.getLogger("spotbackend.tests").warning("outside")
    assert captured[-1].request_id is None and captured[-1].agent_id is None and captured[-1].client_id is None


def test_json_lines_hold_the_ids(captured):
    formatter = logs._json_formatter()
    tokens = logs.bind(request_id="r-1", agent_id="a-1", client_id="7")
    try:
        logging.getLogger("spotbackend.tests").warning("hello %s", "world", extra={"extra_field": 3})
    finally:
        logs.unbind(tokens)
    line = formatter.format(captured[-1])
    assert "\n" not in line
    doc = json.loads(line)
    assert doc["message"] == "hello world" and doc["level"] == "WARNING" and doc["logger"] == "spotbackend.tests"
    assert (doc["request_id"], doc["agent_id"], doc["client_id"], doc["task_id"]) == ("r-1", "a-1", "7", None)
    assert doc["extra_field"] == 3 and doc["time"].endswith("+00:00")


def test_log_format_is_checked_and_json_is_a_json_handler():
    from django.core.exceptions import ImproperlyConfigured

    assert settings.LOG_FORMAT == "text"  # the default
    assert logs.logging_config(fmt="json", level="INFO")["handlers"]["console"]["formatter"] == "json"
    with pytest.raises(ImproperlyConfigured):
        logs.logging_config(fmt="xml", level="INFO")


def test_a_task_published_during_a_request_carries_its_request_id_and_logs_both_ids(captured):
    headers = {}
    tokens = logs.bind(request_id="from-the-web")
    try:
        signals.before_task_publish.send(sender="agents.periodic.stale_agents_sweep", headers=headers, body=None)
    finally:
        logs.unbind(tokens)
    assert headers[logs.TASK_HEADER] == "from-the-web"

    @celery_app.task(name="spotbackend.tests.test_logs.noisy", bind=True)
    def noisy(self):
        logging.getLogger("spotbackend.tests").warning("in the task")
        return self.request.id

    task_id = noisy.apply(headers=headers).get()
    record = next(r for r in captured if r.getMessage() == "in the task")
    assert (record.task_id, record.request_id) == (task_id, "from-the-web")
    logging.getLogger("spotbackend.tests").warning("after the task")
    assert captured[-1].task_id is None and captured[-1].request_id is None


class _FakeSentry(BaseHTTPRequestHandler):
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        elif self.headers.get("Content-Encoding") == "br":
            body = b"(brotli)"
        _FakeSentry.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


_SCRIPT = """
import logging, os, django, sentry_sdk
os.environ["DJANGO_SETTINGS_MODULE"] = "spotbackend.settings"
django.setup()
from spotbackend import logs
print("active", sentry_sdk.get_client().is_active(), flush=True)
logs.bind(request_id="sentry-req-1", agent_id="agent-9")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("spotbackend.tests").exception("it broke")
sentry_sdk.flush(timeout=10)
"""


@pytest.mark.parametrize("with_dsn", [True, False])
def test_errors_go_to_sentry_only_when_a_dsn_is_set(tmp_path, with_dsn):
    _FakeSentry.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeSentry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {**os.environ, "SPOTBACKEND_VAR_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
               "SENTRY_DSN": f"http://publickey@127.0.0.1:{server.server_address[1]}/42" if with_dsn else ""}
        out = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=settings.BASE_DIR, env=env, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr[-3000:]
        assert f"active {with_dsn}" in out.stdout
    finally:
        server.shutdown()
        server.server_close()
    if not with_dsn:
        assert _FakeSentry.received == []
        return
    assert _FakeSentry.received, out.stderr[-2000:]
    path, body = _FakeSentry.received[0]
    assert path == "/api/42/envelope/"
    text = body.decode("utf-8", "replace")
    assert "ZeroDivisionError" in text and "sentry-req-1" in text and "agent-9" in text


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_logs_json_lines_with_the_task_id_and_the_enqueuing_request_id(tmp_path, redis_url):
    from celery import Celery

    from spotbackend.tests.live import database_url, process_stop

    queue = f"sb-logs-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "DATABASE_URL": database_url(), "REDIS_URL": redis_url, "CONN_MAX_AGE": "0",
           "SPOTBACKEND_VAR_DIR": str(tmp_path), "LOG_FORMAT": "json"}
    env.pop("TEST_DATABASE_NAME", None)
    log = open(tmp_path / "worker.log", "w+")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "spotbackend", "worker", "--pool", "solo", "-Q", queue,
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"],
        cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    sender = Celery("logs-test", broker=redis_url, set_as_current=False)
    try:
        task_id = sender.send_task("agents.periodic.stale_agents_sweep", queue=queue,
                                   headers={logs.TASK_HEADER: "live-req-7"}).id
        deadline = time.monotonic() + 90
        found = None
        while found is None and worker.poll() is None and time.monotonic() < deadline:
            log.seek(0)
            for line in log.read().splitlines():
                if task_id in line and "succeeded" in line:
                    found = line
            time.sleep(0.2)  # polling interval; the deadline bounds the wait
        log.seek(0)
        output = log.read()
        assert found is not None, output[-4000:]
        doc = json.loads(found)  # the worker's lines are JSON too
        assert doc["task_id"] == task_id and doc["request_id"] == "live-req-7", doc
        lines = [line for line in output.splitlines() if line.startswith("{")]
        assert lines and all(json.loads(line)["level"] for line in lines)
    finally:
        process_stop(worker)
        log.close()
        with sender.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)


def test_gunicorn_lines_are_json_too_with_the_request_id():
    from gunicorn.glogging import SafeAtoms

    config = logs.gunicorn_logconfig()
    assert config["loggers"]["gunicorn.access"]["propagate"] is False
    formatter = config["formatters"]["json_access"]["()"]()
    atoms = SafeAtoms({"h": "10.0.0.7", "m": "POST", "U": "/api/agents/a1/heartbeat", "q": "", "s": "200",
                       "B": "17", "M": "3", "a": "python-requests/2.31.0", "{x-request-id}o": "trace-9",
                       "r": "POST /api/agents/a1/heartbeat HTTP/1.1"})
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, '%(h)s "%(r)s" %(s)s', (atoms,), None)
    doc = json.loads(formatter.format(record))
    assert doc["request_id"] == "trace-9" and doc["status"] == 200 and doc["duration_ms"] == 3
    assert doc["path"] == "/api/agents/a1/heartbeat" and doc["logger"] == "gunicorn.access"
    assert doc["message"] == '10.0.0.7 "POST /api/agents/a1/heartbeat HTTP/1.1" 200'
    error = json.loads(config["formatters"]["json"]["()"]().format(
        logging.LogRecord("gunicorn.error", logging.INFO, __file__, 1, "Booting worker with pid: %s", (42,), None)))
    assert error["message"] == "Booting worker with pid: 42" and error["level"] == "INFO"


@pytest.mark.django_db(transaction=True)  # the notification is published at commit, inside the request
def test_a_task_a_request_publishes_carries_the_request_id(settings):
    from clients.tests.factories import ClientFactory

    settings.TERMINATION_NOTIFICATION_WEBHOOK = "http://127.0.0.1:9/hook"  # nothing is delivered here
    client_obj = ClientFactory()
    agent = AgentFactory(client=client_obj, instance_id="i-0aaa1111", az="us-east-1a", current_mode="spot")
    published = []

    def grab(sender=None, headers=None, **kwargs):
        published.append((sender, dict(headers or {})))

    signals.before_task_publish.connect(grab, weak=False, dispatch_uid="test_logs.grab")
    try:
        response = bearer(client_obj).post(
            f"/api/agents/{agent.pk}/termination-imminent", {"instance_id": "i-0aaa1111",
                                                              "termination_time": "2026-11-26T19:25:57Z"},
            format="json", HTTP_X_REQUEST_ID="notice-77")
    finally:
        signals.before_task_publish.disconnect(dispatch_uid="test_logs.grab")
    assert response.status_code == 200, response.content
    deliveries = [headers for sender, headers in published if sender == "notifications.deliver"]
    assert deliveries and all(h[logs.TASK_HEADER] == "notice-77" for h in deliveries), published
