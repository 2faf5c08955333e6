"""What a termination notice costs (docs/PERFORMANCE.md, "Termination notices"): a fixed, small number of
statements that does not grow with history, no lock for a repeat, and no cache dropped fleet-wide."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import Decision, SystemEvent, TerminationEvent
from agents.services import termination
from agents.tests.factories import AgentFactory, SpotPoolFactory
from clients.tests.factories import ClientFactory
from notifications.models import Notification

pytestmark = pytest.mark.django_db

# A first notice with the webhook on: six reads (the unlocked look-up, the agent row with the lock, its live
# replicas, the candidate pools with the dying one, their interruption signals), six writes (the event, both
# decisions, the instance's end, the agent, the system event, the outbox row), and after commit the outbox's
# publish mark and the dying pool's cooldown mark (only the first notice of a pool in a minute).
FIRST_NOTICE_MAX = 14
REPEAT_MAX = 4  # the owner check, find the event, count the sighting, mark the agent


@pytest.fixture
def pools(db):
    return [SpotPoolFactory(az=f"us-east-1{x}", latest_price=Decimal("0.0125") + k * Decimal("0.001"))
            for k, x in enumerate("abcdef")]


def body(agent, **over):
    return {"instance_id": agent.instance_id, "termination_time": "2026-11-30T12:02:00Z",
            "detected_at": "2026-11-30T12:00:01", **over}


def registered(**kwargs):
    return AgentFactory(**kwargs)


def post(api, agent, notice):
    return api.post(f"/api/agents/{agent.pk}/termination-imminent", notice, format="json")


def statements(ctx):
    return [q["sql"] for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"]]


def history(client_obj, pools, n):
    """n notices of other agents (this client's and another's) in the same pools, and decisions and
    system events that go with them."""
    other = ClientFactory()
    now = timezone.now()
    agents = [AgentFactory(client=client_obj, current_pool=pools[0]), AgentFactory(client=other)]
    TerminationEvent.objects.bulk_create(
        TerminationEvent(agent=agents[k % 2], client_id=agents[k % 2].client_id, instance_id=f"i-old{k}",
                         pool=pools[k % len(pools)], event_type="termination_notice", notice_key=f"old{k}",
                         detected_at=now - timedelta(hours=k % 48, minutes=k % 60), last_seen_at=now)
        for k in range(n))
    Decision.objects.bulk_create(Decision(client_id=client_obj.pk, agent=agents[0], kind="termination", action="x")
                                 for _ in range(n))
    SystemEvent.objects.bulk_create(SystemEvent(agent=agents[0], client=client_obj, event_type="x", message="x")
                                    for _ in range(n))


@pytest.mark.parametrize("older", [0, 300])
def test_a_notice_makes_a_fixed_handful_of_statements(api, client_obj, pools, settings, older,
                                                      django_capture_on_commit_callbacks):
    settings.TERMINATION_NOTIFICATION_WEBHOOK = "http://127.0.0.1:9/never"
    history(client_obj, pools, older)
    agent = registered(client=client_obj, current_pool=pools[0])
    post(api, registered(client=client_obj), body(agent))  # the token cache warm, as in production
    with CaptureQueriesContext(connection) as first, django_capture_on_commit_callbacks(execute=True):
        r = post(api, agent, body(agent))
    assert r.json()["create_emergency_replica"] is True
    assert len(statements(first)) <= FIRST_NOTICE_MAX, "\n".join(q[:150] for q in statements(first))
    assert sum("FOR UPDATE" in q for q in statements(first)) == 1  # the agent row, nothing else
    assert not any(q.startswith("SELECT `clients`") for q in statements(first))  # the flag comes with the lock
    assert Notification.objects.count() == 1

    with CaptureQueriesContext(connection) as repeat, django_capture_on_commit_callbacks(execute=True):
        r = post(api, agent, body(agent))
    assert r.json()["create_emergency_replica"] is False
    assert len(statements(repeat)) <= REPEAT_MAX, statements(repeat)
    assert not any("FOR UPDATE" in q for q in statements(repeat))  # a repeat locks nothing


def test_the_statement_count_does_not_grow_with_history(api, client_obj, pools, django_capture_on_commit_callbacks):
    counts = []
    for k, older in enumerate((0, 200)):
        history(client_obj, pools, older)
        agent = registered(client=client_obj, current_pool=pools[1 + k])  # a pool not yet marked, each time
        post(api, registered(client=client_obj), body(agent))
        with CaptureQueriesContext(connection) as first, django_capture_on_commit_callbacks(execute=True):
            post(api, agent, body(agent))
        with CaptureQueriesContext(connection) as repeat, django_capture_on_commit_callbacks(execute=True):
            post(api, agent, body(agent))
        counts.append((len(statements(first)), len(statements(repeat))))
    assert counts[0] == counts[1], counts


def test_a_post_that_lost_the_race_answers_as_a_repeat(api, client_obj, pools, monkeypatch):
    """Two posts of one notice at once: both miss the unlocked look-up, the second takes the lock after
    the first committed, and its INSERT meets the unique key: it answers the stored decision."""
    agent = AgentFactory(client=client_obj, current_pool=pools[0])
    first = post(api, agent, body(agent)).json()
    real_find = termination.termination_notice_find
    misses = []

    def late_find(**kwargs):
        if not misses:
            misses.append(1)
            return None  # the look-up ran before the first post committed
        return real_find(**kwargs)

    monkeypatch.setattr(termination, "termination_notice_find", late_find)
    second = post(api, agent, body(agent))
    assert second.status_code == 200, second.content
    second = second.json()
    assert first["create_emergency_replica"] is True and second["create_emergency_replica"] is False
    assert second["event_id"] == first["event_id"]
    assert second["instructions"] == "Notice already handled: " + first["instructions"]
    event = TerminationEvent.objects.get(agent=agent)
    assert event.notice_count == 2
    assert Decision.objects.filter(agent=agent, kind="termination").count() == 1
    assert Decision.objects.filter(agent=agent, kind="failover_pool").count() == 1
    assert SystemEvent.objects.filter(agent=agent, event_type="termination_notice").count() == 1


def test_the_first_notice_stores_what_it_stored_before(api, client_obj, pools, settings,
                                                       django_capture_on_commit_callbacks):
    """The rows a first notice writes, field by field (the event in one INSERT, both decisions in one)."""
    settings.TERMINATION_NOTIFICATION_WEBHOOK = "http://127.0.0.1:9/never"
    agent = AgentFactory(client=client_obj, current_pool=pools[0])
    with django_capture_on_commit_callbacks(execute=True):
        answer = post(api, agent, body(agent, action="terminate")).json()
    event = TerminationEvent.objects.get(agent=agent)
    assert (event.status, event.action_taken, event.pool_id, event.notice_key, event.notice_count) == (
        "handling", "create_emergency_replica", pools[0].pk, "2026-11-30T12:02:00Z", 1)
    assert event.metadata == {"action": "terminate", "reason": event.metadata["reason"], "dry_run": False,
                              "target_mode": "spot", "target_pool_id": pools[1].pk,
                              "instructions": "Create emergency replica and prepare for failover",
                              "replica_id": "", "command_id": ""}
    assert answer["event_id"] == event.pk and answer["target_pool_id"] == pools[1].pk
    failover, verdict = Decision.objects.filter(agent=agent).order_by("created_at", "kind")
    assert (failover.kind, failover.action, failover.target_pool_id, failover.target_price, failover.from_pool_id,
            failover.termination_event_id) == ("failover_pool", "choose_spot", pools[1].pk, Decimal("0.0135"),
                                               pools[0].pk, event.pk)
    assert (verdict.kind, verdict.action, verdict.target_pool_id, verdict.termination_event_id,
            verdict.reason) == ("termination", "create_emergency_replica", pools[1].pk, event.pk, failover.reason)
    system_event = SystemEvent.objects.get(agent=agent, event_type="termination_notice")
    assert system_event.client_id == client_obj.pk
    notification = Notification.objects.get()
    assert notification.client_id == client_obj.pk and notification.metadata["termination_event_id"] == event.pk
    agent.refresh_from_db()
    assert agent.status == "terminating" and agent.last_termination_notice_at is not None
    assert agent.instances.get(is_primary=True).ended_at is not None
    pools[0].refresh_from_db()
    assert pools[0].cooldown_until is not None


def test_a_notice_for_an_agent_deleted_meanwhile_is_not_found(db):
    """The view checks the owner from a cache; the row itself is read under the lock: gone is a 404."""
    import uuid

    from agents.services.termination_events import Notice
    from spotbackend.exceptions import NotFoundError

    with pytest.raises(NotFoundError):
        termination.termination_notice_handle(
            agent_id=uuid.uuid4(), notice=Notice(instance_id="i-gone", termination_time=timezone.now()))


def test_a_timeless_notice_seen_again_after_a_long_silence_is_still_one_notice(api, client_obj, pools):
    """Without a termination time a notice is found by recency; one that returns after the window with
    the same first sighting meets its own row's unique key and is answered as a repeat, never a 500."""
    agent = AgentFactory(client=client_obj, current_pool=pools[0])
    notice = body(agent, termination_time=None, detected_at="2026-11-30T12:00:01")
    assert post(api, agent, notice).json()["create_emergency_replica"] is True
    TerminationEvent.objects.filter(agent=agent).update(last_seen_at=timezone.now() - timedelta(minutes=30))
    again = post(api, agent, notice)
    assert again.status_code == 200, again.content
    assert again.json()["create_emergency_replica"] is False
    assert TerminationEvent.objects.get(agent=agent).notice_count == 2
