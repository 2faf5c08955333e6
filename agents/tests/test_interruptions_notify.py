"""Termination notifications: a Slack-compatible webhook posted by a Celery task after commit,
once per notice, retried with backoff. Tested against a real HTTP listener on the loopback."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agents import tasks
from agents.tests.factories import AgentFactory, SpotPoolFactory

pytestmark = pytest.mark.django_db


def notifications(callbacks):
    """The after-commit callbacks that publish a notification (not the cache upkeep ones)."""
    return [c for c in callbacks if "hot_invalidate" not in c.__qualname__]


class Listener:
    """A local webhook receiver: answers the queued status codes in turn (then 200), keeps the bodies."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.bodies: list[dict] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                listener.bodies.append(json.loads(self.rfile.read(length) or b"{}"))
                code = listener.statuses.pop(0) if listener.statuses else 200
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def agent(client_obj):
    pool = SpotPoolFactory(az="us-east-1a")
    SpotPoolFactory(az="us-east-1b", risk_recommendation="safe")
    return AgentFactory(client=client_obj, current_pool=pool, hostname="web-7")


@pytest.fixture
def delays(monkeypatch):
    """Record what would be enqueued, and run it for real (eagerly) against the listener."""
    sent: list[str] = []

    def delay(text):
        sent.append(text)
        return tasks.webhook_notify.apply(args=(text,))

    monkeypatch.setattr(tasks.webhook_notify, "delay", delay)
    return sent


def notice(agent):
    return {"instance_id": agent.instance_id, "termination_time": "2025-01-01T00:02:00Z",
            "detected_at": "2026-11-26T19:23:57.243454"}


def test_notice_posts_one_slack_message_after_commit(api, agent, settings, delays, django_capture_on_commit_callbacks):
    with Listener() as hook:
        settings.TERMINATION_NOTIFICATION_WEBHOOK = hook.url
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            r = api.post(f"/api/agents/{agent.pk}/termination-imminent", notice(agent), format="json")
            assert r.status_code == 200
            assert delays == []  # nothing leaves inside the request's transaction
        assert len(notifications(callbacks)) == 1
        notifications(callbacks)[0]()
        assert len(hook.bodies) == 1
    text = hook.bodies[0]["text"]
    assert set(hook.bodies[0]) == {"text"}
    for expected in ("web-7", str(agent.pk), agent.instance_id, "t3.medium.us-east-1a", "2025-01-01T00:02:00Z",
                     "create_emergency_replica", "t3.medium.us-east-1b"):
        assert expected in text


def test_three_repeated_posts_enqueue_exactly_once(api, agent, settings, delays, django_capture_on_commit_callbacks):
    settings.TERMINATION_NOTIFICATION_WEBHOOK = "http://127.0.0.1:9/unused"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        for _ in range(3):
            assert api.post(f"/api/agents/{agent.pk}/termination-imminent", notice(agent), format="json").status_code == 200
    assert len(notifications(callbacks)) == 1


def test_no_webhook_configured_enqueues_nothing(api, agent, settings, django_capture_on_commit_callbacks):
    settings.TERMINATION_NOTIFICATION_WEBHOOK = ""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        api.post(f"/api/agents/{agent.pk}/termination-imminent", notice(agent), format="json")
    assert notifications(callbacks) == []


def test_failing_listener_is_retried_until_it_accepts(settings):
    with Listener(statuses=[500, 502]) as hook:
        settings.TERMINATION_NOTIFICATION_WEBHOOK = hook.url
        result = tasks.webhook_notify.apply(args=("hello",))
        assert len(hook.bodies) == 3  # two failures, then delivered
    assert result.successful()
    assert hook.bodies[-1] == {"text": "hello"}


def test_listener_that_keeps_failing_gives_up_after_max_retries(settings):
    task = tasks.webhook_notify
    with Listener(statuses=[500] * 50) as hook:
        settings.TERMINATION_NOTIFICATION_WEBHOOK = hook.url
        result = task.apply(args=("hello",))
        assert len(hook.bodies) == task.max_retries + 1
    assert result.failed()


def test_task_retries_with_backoff():
    task = tasks.webhook_notify
    assert task.autoretry_for and task.retry_backoff and task.max_retries >= 3
