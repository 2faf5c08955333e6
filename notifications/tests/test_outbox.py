"""The notification outbox: written with the event, published after commit (never failing the
request), delivered with backoff, failed for good after NOTIFICATION_RETRY_HOURS with a system event,
re-sent by the sweep, retried from the admin. Webhooks are a real HTTP listener on the loopback."""
import socket
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from agents.models import SystemEvent, TerminationEvent
from agents.tests.factories import AgentFactory, SpotPoolFactory
from notifications import services
from notifications.services import outbox
from notifications.models import Notification, NotificationAttempt
from notifications.tasks import notification_deliver_task, notifications_publish_due_task
from notifications.tests.listener import Listener

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(client_obj):
    pool = SpotPoolFactory(az="us-east-1a")
    SpotPoolFactory(az="us-east-1b", risk_recommendation="safe")
    return AgentFactory(client=client_obj, current_pool=pool, hostname="web-7")


@pytest.fixture
def published(monkeypatch):
    """Record what is handed to the broker instead of handing it."""
    sent: list[tuple[int, int | None]] = []
    monkeypatch.setattr(notification_deliver_task, "apply_async",
                        lambda args, countdown=None, retry=True: sent.append((args[0], countdown)))
    return sent


def publishing(callbacks):
    """The after-commit callbacks that publish a notification (not the hot cache's upkeep)."""
    return [c for c in callbacks
            if "notification_publish_after_commit" in getattr(getattr(c, "__code__", None), "co_names", ())]


def notice(agent):
    return {"instance_id": agent.instance_id, "termination_time": "2025-01-01T00:02:00Z",
            "detected_at": "2026-11-26T19:23:57.243454"}


def post_notice(api, agent):
    return api.post(f"/api/agents/{agent.pk}/termination-imminent", notice(agent), format="json")


def test_notice_writes_one_row_published_after_commit_then_delivered(
    api, agent, settings, published, django_capture_on_commit_callbacks
):
    with Listener() as hook:
        settings.TERMINATION_NOTIFICATION_WEBHOOK = hook.url
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            assert post_notice(api, agent).status_code == 200
            assert published == []  # nothing leaves inside the request's transaction
        n = Notification.objects.get()
        assert n.kind == "termination_notice" and n.status == "pending" and n.client_id == agent.client_id
        assert n.metadata["termination_event_id"] == TerminationEvent.objects.get().pk
        assert len(publishing(callbacks)) == 1
        publishing(callbacks)[0]()
        assert published == [(n.pk, None)]
        n.refresh_from_db()
        assert n.published_at is not None
        result = notification_deliver_task.apply(args=(n.pk,)).get()
        assert result["status"] == "sent"
        assert len(hook.bodies) == 1
    text = hook.bodies[0]["text"]
    assert set(hook.bodies[0]) == {"text"}
    for expected in ("web-7", str(agent.pk), agent.instance_id, "t3.medium.us-east-1a", "2025-01-01T00:02:00Z",
                     "create_emergency_replica", "t3.medium.us-east-1b"):
        assert expected in text
    n.refresh_from_db()
    assert (n.status, n.attempts) == ("sent", 1) and n.sent_at is not None
    assert list(n.attempt_log.values_list("success", "status_code")) == [(True, 200)]
    # Delivered once: a duplicate task (sweep, redelivery) sends nothing more.
    assert notification_deliver_task.apply(args=(n.pk,)).get()["status"] == "skipped"


def test_three_repeated_notices_one_notification(api, agent, settings, published):
    settings.TERMINATION_NOTIFICATION_WEBHOOK = "http://127.0.0.1:9/unused"
    for _ in range(3):
        assert post_notice(api, agent).status_code == 200
    assert Notification.objects.count() == 1


def test_no_webhook_configured_writes_nothing(api, agent, settings, published):
    settings.TERMINATION_NOTIFICATION_WEBHOOK = ""
    assert post_notice(api, agent).status_code == 200
    assert not Notification.objects.exists()


def test_rolled_back_event_leaves_no_notification(settings, published, django_capture_on_commit_callbacks):
    settings.TERMINATION_NOTIFICATION_WEBHOOK = "http://127.0.0.1:9/unused"
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                services.notification_enqueue(kind="x", text="hello")
                raise RuntimeError
    assert publishing(callbacks) == [] and not Notification.objects.exists() and published == []


def make(settings, url, **over) -> Notification:
    settings.TERMINATION_NOTIFICATION_WEBHOOK = url
    now = timezone.now()
    values = {"kind": "test", "text": "hello", "next_attempt_at": now, "created_at": now,
              "retry_until": now + timedelta(hours=settings.NOTIFICATION_RETRY_HOURS), **over}
    return Notification.objects.create(**values)


def test_failures_are_stored_and_retried_with_backoff_until_accepted(settings, published):
    with Listener(statuses=[500, 502]) as hook:
        n = make(settings, hook.url)
        t = timezone.now()
        first = services.notification_deliver(notification_id=n.pk, now=t)
        assert first["status"] == "pending" and first["retry_in"] == 5
        # Not due yet: a task arriving early does nothing.
        assert services.notification_deliver(notification_id=n.pk, now=t + timedelta(seconds=4))["status"] == "skipped"
        second = services.notification_deliver(notification_id=n.pk, now=t + timedelta(seconds=5))
        assert second["retry_in"] == 10  # doubled
        third = services.notification_deliver(notification_id=n.pk, now=t + timedelta(seconds=15))
        assert third["status"] == "sent"
        assert len(hook.bodies) == 3
    assert list(n.attempt_log.values_list("success", "status_code")) == [(False, 500), (False, 502), (True, 200)]
    assert "HTTP 500" in n.attempt_log.first().error


def test_the_task_queues_the_next_attempt_after_the_backoff(settings, published):
    with Listener(statuses=[503]) as hook:
        n = make(settings, hook.url)
        assert notification_deliver_task.apply(args=(n.pk,)).get()["retry_in"] == 5
    assert published == [(n.pk, 5)]


def test_backoff_is_capped_and_spans_the_retry_window():
    assert [services.backoff_seconds(a) for a in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert services.backoff_seconds(40) == outbox.BACKOFF_MAX_SECONDS


def test_after_the_retry_window_failed_with_system_event_then_admin_retry_now(settings, published, admin_client):
    port = _closed_port()
    settings.NOTIFICATION_RETRY_HOURS = 24
    n = make(settings, f"http://127.0.0.1:{port}/hook")
    t = n.created_at
    attempts = 0
    while True:  # walk the clock through 24 h of attempts
        result = services.notification_deliver(notification_id=n.pk, now=t)
        attempts += 1
        if result["status"] == "failed":
            break
        t += timedelta(seconds=result["retry_in"])
    assert t - n.created_at <= timedelta(hours=24) and attempts == NotificationAttempt.objects.count() > 10
    n.refresh_from_db()
    assert n.status == "failed" and n.failed_at is not None and "ConnectionError" in n.last_error
    event = SystemEvent.objects.get(event_type="notification_failed")
    assert event.severity == "error" and event.metadata["notification_id"] == n.pk

    page = admin_client.get("/admin/notifications/notification/?status__exact=failed")
    assert page.status_code == 200 and b"retry_now" in page.content
    detail = admin_client.get(f"/admin/notifications/notification/{n.pk}/change/")
    assert detail.status_code == 200 and b"ConnectionError" in detail.content
    with Listener() as hook:
        settings.TERMINATION_NOTIFICATION_WEBHOOK = hook.url
        r = admin_client.post("/admin/notifications/notification/",
                              {"action": "retry_now", "_selected_action": [n.pk]}, follow=True)
        assert r.status_code == 200
        n.refresh_from_db()
        assert n.status == "pending"
        assert services.notification_deliver(notification_id=n.pk)["status"] == "sent"
        assert hook.bodies == [{"text": "hello"}]


def test_retry_now_gives_one_attempt_only(settings, published):
    n = make(settings, f"http://127.0.0.1:{_closed_port()}/hook", status="failed")
    assert services.notifications_retry_now(notification_ids=[n.pk]) == 1
    assert services.notification_deliver(notification_id=n.pk)["status"] == "failed"
    assert SystemEvent.objects.filter(event_type="notification_failed").count() == 1


def test_sweep_resends_what_was_never_published_after_a_grace(settings, published):
    now = timezone.now()
    fresh = make(settings, "http://127.0.0.1:9/x")
    old = make(settings, "http://127.0.0.1:9/x", next_attempt_at=now - timedelta(minutes=5))
    make(settings, "http://127.0.0.1:9/x", next_attempt_at=now - timedelta(minutes=5), status="sent")
    assert services.notifications_publish_due(now=now) == 1
    assert published == [(old.pk, None)]
    assert notifications_publish_due_task.apply().get() == {"published": 1}
    assert fresh.pk not in [pk for pk, _ in published]


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.django_db(transaction=True)
def test_broker_down_at_commit_notice_still_answers_and_the_row_waits_for_the_sweep(
    api, agent, settings, broker_at, caplog, monkeypatch
):
    """The request commits for real (transactional test), so the after-commit publish runs inside it."""
    broker_at(f"redis://127.0.0.1:{_closed_port()}/9")
    settings.TERMINATION_NOTIFICATION_WEBHOOK = "http://127.0.0.1:9/hook"
    r = post_notice(api, agent)
    assert r.status_code == 200, r.content
    assert r.json()["create_emergency_replica"] is True
    assert TerminationEvent.objects.get().action_taken == "create_emergency_replica"
    n = Notification.objects.get()
    assert n.status == "pending" and n.published_at is None
    assert "not published" in caplog.text
    # The repeat still says "already handled"; the decision is in the first answer, which arrived.
    assert post_notice(api, agent).status_code == 200
    assert Notification.objects.count() == 1

    # For a while this process leaves the broker alone: the next notice does not wait on it again.
    tries = []
    original = notification_deliver_task.apply_async
    monkeypatch.setattr(notification_deliver_task, "apply_async", lambda *a, **kw: tries.append(1) or original(*a, **kw))
    other = AgentFactory(client=agent.client, current_pool=agent.current_pool)
    assert post_notice(api, other).status_code == 200
    assert Notification.objects.filter(published_at__isnull=True).count() == 2 and tries == []


@pytest.mark.django_db(transaction=True)
def test_hung_broker_does_not_fail_the_notice(api, agent, settings, broker_at):
    """A broker that accepts TCP and never answers: the publish gives up after its socket timeout."""
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    try:
        broker_at(f"redis://127.0.0.1:{hung.getsockname()[1]}/9")
        settings.TERMINATION_NOTIFICATION_WEBHOOK = "http://127.0.0.1:9/hook"
        r = post_notice(api, agent)
        assert r.status_code == 200, r.content
        assert Notification.objects.get().published_at is None
    finally:
        hung.close()


LIVE_REDIS_URL = "redis://127.0.0.1:6379/9"


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_real_worker_delivers_a_termination_notice(api, agent, settings, broker_at, tmp_path):
    """Request -> outbox row -> publish after commit -> a real Celery worker -> the webhook."""
    import os
    import subprocess
    import sys
    import time
    import uuid

    from spotbackend.celery import app
    from spotbackend.tests.live import process_stop
    from spotbackend.tests.test_celery_live import _database_url

    queue = f"sb-outbox-{uuid.uuid4().hex[:12]}"  # our own queue on the shared Redis
    broker_at(LIVE_REDIS_URL)
    saved_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    with Listener() as hook:
        settings.TERMINATION_NOTIFICATION_WEBHOOK = hook.url
        env = {**os.environ, "DATABASE_URL": _database_url(), "REDIS_URL": LIVE_REDIS_URL, "CONN_MAX_AGE": "0",
               "TERMINATION_NOTIFICATION_WEBHOOK": hook.url, "SPOTBACKEND_VAR_DIR": str(tmp_path)}
        env.pop("TEST_DATABASE_NAME", None)
        log = open(tmp_path / "worker.log", "w+")
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "spotbackend", "worker", "--pool", "solo", "-Q", queue,
             "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"],
            cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            r = post_notice(api, agent)
            assert r.status_code == 200 and r.json()["create_emergency_replica"] is True
            n = Notification.objects.get()
            assert n.published_at is not None
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and worker.poll() is None:
                n.refresh_from_db()
                if n.status != "pending":
                    break
                time.sleep(0.2)  # polling interval; the deadline bounds the wait
            log.seek(0)
            assert n.status == "sent", f"worker exit={worker.poll()}\n{log.read()[-3000:]}"
            assert len(hook.bodies) == 1 and agent.instance_id in hook.bodies[0]["text"]
            assert n.attempt_log.get().success is True
        finally:
            process_stop(worker)
            log.close()
            app.conf.task_default_queue = saved_queue
            with app.connection_for_write() as conn:  # leave nothing behind on the shared Redis
                conn.default_channel.queue_delete(queue)
            import redis

            redis.Redis.from_url(LIVE_REDIS_URL).delete(f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
