"""Termination notices and rebalance recommendations through the real URLs (docs/API.md §1.8, §1.9)."""
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.models import AgentStatus, Command, Replica, SpotPool, SystemEvent, TerminationEvent
from agents.tests.factories import AgentFactory, ReplicaFactory, SpotPoolFactory

pytestmark = pytest.mark.django_db

NOTICE = {"instance_id": None, "termination_time": "2025-01-01T00:02:00Z", "detected_at": "2026-11-26T19:23:57.243454"}


@pytest.fixture
def pools(db):
    return {
        "a": SpotPoolFactory(az="us-east-1a", latest_price=Decimal("0.0125")),
        "b": SpotPoolFactory(az="us-east-1b", latest_price=Decimal("0.0131"), risk_recommendation="safe"),
        "c": SpotPoolFactory(az="us-east-1c", latest_price=Decimal("0.0119")),
        "d": SpotPoolFactory(az="us-east-1d", latest_price=Decimal("0.0050"), risk_recommendation="avoid"),
    }


@pytest.fixture
def agent(client_obj, pools):
    return AgentFactory(client=client_obj, current_pool=pools["a"], az="us-east-1a")


def notice(agent, **over):
    return {**NOTICE, "instance_id": agent.instance_id, **over}


def post(api, agent, path, body):
    return api.post(f"/api/agents/{agent.pk}/{path}", body, format="json")


def test_termination_first_post_asks_for_one_replica_in_the_failover_pool(api, agent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        r = post(api, agent, "termination-imminent", notice(agent))
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["success"] is True
    assert body["create_emergency_replica"] is True
    assert body["target_pool_id"] == "t3.medium.us-east-1b"  # safe beats cheaper unrated, avoid never
    assert body["instructions"]
    event = TerminationEvent.objects.get(agent=agent)
    assert event.event_type == "termination_notice"
    assert event.notice_key == "2025-01-01T00:02:00Z"
    assert event.pool_id == "t3.medium.us-east-1a"
    assert event.action_taken == "create_emergency_replica"
    assert event.metadata["reason"]
    agent.refresh_from_db()
    assert agent.status == AgentStatus.TERMINATING
    assert agent.last_termination_notice_at is not None
    assert SystemEvent.objects.filter(agent=agent, event_type="termination_notice", severity="warning").count() == 1
    # The dying pool is marked for staff once the notice has committed (decisions read the notices).
    assert SpotPool.objects.get(pk="t3.medium.us-east-1a").cooldown_until is not None


def test_repeated_posts_update_the_one_row_and_never_ask_again(api, agent):
    answers = [post(api, agent, "termination-imminent", notice(agent)).json() for _ in range(5)]
    assert [a["create_emergency_replica"] for a in answers] == [True, False, False, False, False]
    assert {a["target_pool_id"] for a in answers} == {"t3.medium.us-east-1b"}
    event = TerminationEvent.objects.get(agent=agent)
    assert event.notice_count == 5
    assert SystemEvent.objects.filter(agent=agent, event_type="termination_notice").count() == 1
    # A repeat answers the stored decision, saying it was already handled (docs/API.md §1.8).
    assert answers[1]["instructions"] == "Notice already handled: " + answers[0]["instructions"]
    assert {a["action"] for a in answers} == {answers[0]["action"]}


def test_a_repeat_of_an_event_stored_with_its_repeat_text_answers_that_text(api, agent):
    """Events stored before the repeat text was derived on read carry it precomputed."""
    post(api, agent, "termination-imminent", notice(agent))
    event = TerminationEvent.objects.get(agent=agent)
    event.metadata = {**event.metadata, "repeat_instructions": "Notice already handled: stored text"}
    event.save(update_fields=["metadata"])
    assert post(api, agent, "termination-imminent", notice(agent)).json()["instructions"] == (
        "Notice already handled: stored text"
    )


def test_request_document_spelling_action_and_time(api, agent):
    body = {"instance_id": agent.instance_id, "action": "terminate", "time": "2024-01-15T12:30:00Z",
            "detected_at": "2024-01-15T12:28:00Z"}
    assert post(api, agent, "termination-imminent", body).json()["create_emergency_replica"] is True
    assert post(api, agent, "termination-imminent", body).json()["create_emergency_replica"] is False
    event = TerminationEvent.objects.get(agent=agent)
    assert event.notice_key == "2024-01-15T12:30:00Z"
    assert event.termination_time.isoformat() == "2024-01-15T12:30:00+00:00"
    assert event.metadata["action"] == "terminate"


def test_a_notice_without_time_is_still_one_notice(api, agent):
    body = {"instance_id": agent.instance_id}
    answers = [post(api, agent, "termination-imminent", body).json()["create_emergency_replica"] for _ in range(3)]
    assert answers == [True, False, False]
    assert TerminationEvent.objects.filter(agent=agent).count() == 1


def test_a_new_notice_for_a_new_instance_decides_again(api, agent):
    assert post(api, agent, "termination-imminent", notice(agent)).json()["create_emergency_replica"] is True
    agent.instance_id = "i-next"
    agent.save()
    assert post(api, agent, "termination-imminent", notice(agent)).json()["create_emergency_replica"] is True
    assert TerminationEvent.objects.filter(agent=agent).count() == 2


def test_notice_from_a_non_primary_instance_changes_nothing(api, agent):
    r = post(api, agent, "termination-imminent", notice(agent, instance_id="i-old"))
    assert r.json()["create_emergency_replica"] is False
    agent.refresh_from_db()
    assert agent.status == AgentStatus.ONLINE


def test_ready_replica_is_promoted_instead(api, agent, pools):
    replica = ReplicaFactory(agent=agent, status="ready", pool=pools["c"], instance_id="i-rep")
    body = post(api, agent, "termination-imminent", notice(agent)).json()
    assert body["create_emergency_replica"] is False
    assert body["action"] == "promote_replica"
    assert body["replica_id"] == str(replica.pk)
    replica.refresh_from_db()
    agent.refresh_from_db()
    assert replica.status == "promoted"
    assert agent.instance_id == "i-rep"
    assert agent.instances.filter(is_primary=True).count() == 1
    event = TerminationEvent.objects.get(agent=agent)
    assert event.status == "resolved"
    assert event.emergency_replica_id == replica.pk  # the promotion's link survives the event's save


def test_auto_create_off_says_what_happens_instead(api, agent, settings):
    settings.TERMINATION_REPLICA_AUTO_CREATE = False
    body = post(api, agent, "termination-imminent", notice(agent)).json()
    assert body["create_emergency_replica"] is False
    assert "TERMINATION_REPLICA_AUTO_CREATE=false" in body["instructions"]
    assert body["action"] == "notify_only"


def test_termination_of_another_clients_agent_is_404(other_api, agent):
    r = post(other_api, agent, "termination-imminent", notice(agent))
    assert r.status_code == 404
    assert r.json()["success"] is False


def test_wrong_type_is_a_400_naming_the_field(api, agent):
    r = post(api, agent, "termination-imminent", notice(agent, termination_time=12))
    assert r.status_code == 400
    assert "termination_time" in r.json()["error"]


def test_termination_path_makes_few_queries(api, agent):
    with CaptureQueriesContext(connection) as first:
        post(api, agent, "termination-imminent", notice(agent))
    with CaptureQueriesContext(connection) as repeat:
        post(api, agent, "termination-imminent", notice(agent))
    real = lambda ctx: [q["sql"] for q in ctx if "SAVEPOINT" not in q["sql"]]  # noqa: E731
    # A fixed handful, independent of table sizes (agents/tests/test_termination_cost.py has the detail):
    # here also the token and the agent's owner, read once and then cached.
    assert len(real(first)) <= 12, real(first)
    assert len(real(repeat)) <= 4, real(repeat)  # the owner check, then what test_termination_cost.py lists
    # The repeat path touches only indexed keys: the agent's primary key and the event's unique key.
    assert not any("replicas" in q or "spot_pools" in q for q in real(repeat))


def test_rebalance_recommends_a_clearly_safer_pool_and_raises_risk(api, agent):
    r = post(api, agent, "rebalance-recommendation", {"instance_id": agent.instance_id,
                                                       "detected_at": "2026-11-26T19:23:57Z"})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["action"] == "switch"
    assert body["target_mode"] == "spot"
    assert body["target_pool_id"] == "t3.medium.us-east-1b"
    assert body["reason"]
    assert Command.objects.count() == 0  # auto switch is off
    # One writer per fact (issue 9, item 6): the handler records its signal; the risk analysis decides.
    assert SpotPool.objects.get(pk="t3.medium.us-east-1a").risk_recommendation == ""
    from datetime import datetime, timezone as dt_tz

    from agents.services.risk import pool_risk_analyze_all

    from agents.services.market import pool_signals

    run_at = datetime(2026, 11, 26, 19, 30, tzinfo=dt_tz.utc)  # the run after the signal
    pool_risk_analyze_all(now=run_at)
    # One client's signal raises the pool's risk for that client's decisions only (market.py); the
    # shared verdict moves when MARKET_EVIDENCE_QUORUM clients agree (test_market.py).
    assert SpotPool.objects.get(pk="t3.medium.us-east-1a").risk_recommendation == "safe"
    assert pool_signals(client_id=agent.client_id, pool_ids=["t3.medium.us-east-1a"], now=run_at).own == {
        "t3.medium.us-east-1a": "caution"}
    agent.refresh_from_db()
    assert agent.last_rebalance_recommendation_at is not None
    assert agent.status == AgentStatus.ONLINE  # advisory: nothing terminates


def test_rebalance_repeats_are_one_event_and_queue_one_command(api, agent):
    agent.auto_switch_enabled = True
    agent.save()
    body = {"instance_id": agent.instance_id, "detected_at": "2026-11-26T19:23:57Z"}
    answers = [post(api, agent, "rebalance-recommendation", {**body, "detected_at": f"2026-11-26T19:2{i}:00Z"}).json()
               for i in range(4)]
    assert {a["action"] for a in answers} == {"switch"}
    assert TerminationEvent.objects.filter(agent=agent, event_type="rebalance_recommendation").count() == 1
    command = Command.objects.get(agent=agent)
    assert command.priority < 50 and command.source == "rebalance"
    assert command.target_pool_id == "t3.medium.us-east-1b"
    assert answers[0]["command_id"] == str(command.pk)


def test_rebalance_does_not_queue_over_an_open_command(api, agent):
    agent.auto_switch_enabled = True
    agent.save()
    Command.objects.create(agent=agent, target_mode="ondemand")
    body = post(api, agent, "rebalance-recommendation", {"instance_id": agent.instance_id}).json()
    assert body["action"] == "switch"
    assert "command_id" not in body
    assert Command.objects.filter(agent=agent).count() == 1


def test_rebalance_monitors_when_nothing_is_clearly_safer(api, agent, pools):
    SpotPool.objects.exclude(pk=pools["a"].pk).update(risk_recommendation="caution")
    body = post(api, agent, "rebalance-recommendation", {"instance_id": agent.instance_id}).json()
    assert body["action"] == "monitor"
