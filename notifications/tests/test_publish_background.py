"""A request never waits for the broker (README "Notifications"): the notification is committed with
the decision, and handed to the broker by the process's background publisher thread, not by the
request's thread. Faced with the real Celery app pointed at a closed port and at a private fake that
accepts and never answers; timings are measured by bench/broker_faults.py, not asserted here."""
import threading

import pytest

from agents.tests.factories import AgentFactory, SpotPoolFactory
from notifications.services import publish as services
from notifications.models import Notification
from notifications.tasks import notification_deliver_task
from spotbackend.tests.faketcp import FakeTCP

pytestmark = pytest.mark.django_db(transaction=True)  # the request commits; the publisher reads committed rows


@pytest.fixture
def agent(client_obj):
    pool = SpotPoolFactory(az="us-east-1a")
    SpotPoolFactory(az="us-east-1b", risk_recommendation="safe")
    return AgentFactory(client=client_obj, current_pool=pool, hostname="web-9")


@pytest.fixture
def background(settings, monkeypatch):
    settings.NOTIFICATION_PUBLISH_BACKGROUND = True
    settings.TERMINATION_NOTIFICATION_WEBHOOK = "http://127.0.0.1:9/hook"
    services.publish_breaker.reset()
    yield services.background_publisher
    services.background_publisher.join()


def post_notice(api, agent):
    return api.post(f"/api/agents/{agent.pk}/termination-imminent",
                    {"instance_id": agent.instance_id, "termination_time": "2025-01-01T00:02:00Z"}, format="json")


def test_the_notice_answers_while_the_publish_is_still_blocked(api, agent, background, monkeypatch):
    """A broker that never answers, played by a publish that blocks until released: the request has
    its answer first, and the publish ran on the publisher thread, never on the request's."""
    request_thread = threading.current_thread()
    release, entered = threading.Event(), threading.Event()
    calls = []

    def hung_apply_async(args, countdown=None, retry=True):
        calls.append((args[0], threading.current_thread().name))
        if threading.current_thread() is request_thread:
            return  # would have blocked the request: recorded, and the assertion below fails
        entered.set()
        assert release.wait(30)

    monkeypatch.setattr(notification_deliver_task, "apply_async", hung_apply_async)
    r = post_notice(api, agent)
    assert r.status_code == 200 and r.json()["create_emergency_replica"] is True
    n = Notification.objects.get()
    assert entered.wait(30)  # the publish started, and is blocked now
    assert calls == [(n.pk, "notification-publisher")]
    assert Notification.objects.get().published_at is None  # not yet: the broker has not answered
    release.set()
    background.join()
    assert Notification.objects.get().published_at is not None


@pytest.mark.parametrize("mode", ["down", "hung"])
def test_broker_down_or_hung_the_notice_answers_and_the_row_waits_for_the_sweep(
    api, agent, background, broker_at, mode, monkeypatch
):
    fake = FakeTCP()
    fake.set(mode)
    try:
        broker_at(f"redis://127.0.0.1:{fake.port}/9")
        threads = []
        original = notification_deliver_task.apply_async
        monkeypatch.setattr(notification_deliver_task, "apply_async",
                            lambda *a, **kw: threads.append(threading.current_thread().name) or original(*a, **kw))
        r = post_notice(api, agent)
        assert r.status_code == 200, r.content
        assert r.json()["create_emergency_replica"] is True
        background.join()  # the publisher gave up on the broker (its timeouts), off the request's thread
        assert threads == ["notification-publisher"]
        n = Notification.objects.get()
        assert n.status == "pending" and n.published_at is None  # the outbox sweep sends it later
        assert services.publish_breaker.opened  # and the process leaves the broker alone meanwhile
        # The next notice does not even try the broker.
        other = AgentFactory(client=agent.client, current_pool=agent.current_pool)
        assert post_notice(api, other).status_code == 200
        background.join()
        assert threads == ["notification-publisher"] and Notification.objects.count() == 2
    finally:
        fake.stop()


def test_with_background_off_the_committing_thread_publishes(api, agent, background, settings, monkeypatch):
    settings.NOTIFICATION_PUBLISH_BACKGROUND = False
    threads = []
    monkeypatch.setattr(notification_deliver_task, "apply_async",
                        lambda args, countdown=None, retry=True: threads.append(threading.current_thread()))
    assert post_notice(api, agent).status_code == 200
    assert threads == [threading.current_thread()]
    assert Notification.objects.get().published_at is not None
