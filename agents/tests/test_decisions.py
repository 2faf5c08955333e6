"""Issue 9, item 8: every automatic decision explains itself. Stored once in `decisions` with typed
inputs and its reason, shown on the agent's admin page, listed at GET /api/client/{client_id}/decisions
(limit/offset, newest first; another client's id is a 404)."""
from datetime import datetime, timedelta, timezone as dt_tz
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone

from agents.models import Command, Decision, Replica
from agents.services.commands import command_expire_stale
from agents.services.replica_sweep import replicas_sweep
from agents.tests.factories import (
    AgentFactory,
    CommandFactory,
    ReplicaFactory,
    SpotPoolFactory,
    TerminationEventFactory,
)

pytestmark = pytest.mark.django_db
DEADLINE = "2025-01-01T00:02:00Z"


@pytest.fixture
def pools(db):
    return {
        "a": SpotPoolFactory(az="us-east-1a", latest_price=Decimal("0.0125")),
        "b": SpotPoolFactory(az="us-east-1b", latest_price=Decimal("0.0131"), risk_recommendation="safe"),
    }


@pytest.fixture
def agent(client_obj, pools):
    return AgentFactory(client=client_obj, current_pool=pools["a"], az="us-east-1a")


def _decisions(api, client, **params):
    r = api.get(f"/api/client/{client.pk}/decisions", params)
    assert r.status_code == 200, r.content
    return r.json()


def test_termination_notice_records_the_decision_and_the_pool_choice(api, client_obj, agent):
    r = api.post(f"/api/agents/{agent.pk}/termination-imminent",
                 {"instance_id": agent.instance_id, "termination_time": DEADLINE}, format="json")
    assert r.json()["create_emergency_replica"] is True
    for _ in range(3):  # the repeats every 5 s decide nothing new
        api.post(f"/api/agents/{agent.pk}/termination-imminent",
                 {"instance_id": agent.instance_id, "termination_time": DEADLINE}, format="json")
    body = _decisions(api, client_obj)
    assert body["total"] == 2
    termination, failover = body["decisions"]  # newest first: the verdict was stored after the choice
    assert termination["kind"] == "termination" and termination["action"] == "create_emergency_replica"
    assert termination["instance_id"] == agent.instance_id and termination["from_pool_id"] == "t3.medium.us-east-1a"
    assert termination["target_pool_id"] == "t3.medium.us-east-1b" and termination["target_mode"] == "spot"
    assert termination["deadline"].startswith("2025-01-01T00:02:00") and termination["reason"]
    assert termination["dry_run"] is False and termination["termination_event_id"] is not None
    assert failover["kind"] == "failover_pool" and failover["action"] == "choose_spot"
    assert failover["target_pool_id"] == "t3.medium.us-east-1b"
    assert failover["target_price"] == 0.0131 and failover["target_risk"] == "safe"  # the inputs, typed
    assert failover["reason"]
    assert isinstance(termination["id"], str) and termination["agent_id"] == str(agent.pk)


def test_rebalance_with_auto_switch_records_the_verdict_and_the_switch(api, client_obj, agent):
    agent.auto_switch_enabled = True
    agent.save()
    api.post(f"/api/agents/{agent.pk}/rebalance-recommendation", {"instance_id": agent.instance_id}, format="json")
    kinds = {d["kind"]: d for d in _decisions(api, client_obj)["decisions"]}
    assert set(kinds) == {"rebalance", "auto_switch"}
    command = Command.objects.get(agent=agent)
    assert kinds["auto_switch"]["command_id"] == str(command.pk)
    assert kinds["auto_switch"]["target_pool_id"] == "t3.medium.us-east-1b"
    assert kinds["rebalance"]["action"] == "switch" and kinds["rebalance"]["reason"]


@override_settings(COMMAND_DELIVERY_TIMEOUT=60)
def test_expiries_and_promotions_are_decisions(client_obj, agent):
    command = CommandFactory(agent=agent, status="delivered", delivered_at=timezone.now() - timedelta(minutes=5))
    command_expire_stale(agent=agent)
    stuck = ReplicaFactory(agent=agent, status="launching", instance_id="")
    Replica.objects.filter(pk=stuck.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    other = AgentFactory(client=client_obj, status="terminating")
    notice = TerminationEventFactory(agent=other, termination_time=timezone.now() - timedelta(seconds=1))
    ReplicaFactory(agent=other, status="ready", instance_id="i-e", termination_event=notice)
    replicas_sweep()
    rows = {(d.kind, d.action): d for d in Decision.objects.filter(client=client_obj)}
    assert rows[("expiry", "expire_command")].command_id == command.pk
    assert "COMMAND_DELIVERY_TIMEOUT" in rows[("expiry", "expire_command")].reason
    assert rows[("expiry", "end_launching_replica")].replica_id == stuck.pk
    promoted = rows[("promotion", "promote_overdue_replica")]
    assert promoted.agent == other and promoted.deadline == notice.termination_time and promoted.reason


def test_paging_newest_first(api, client_obj, agent):
    base = datetime(2026, 11, 1, tzinfo=dt_tz.utc)
    made = []
    for n in range(5):
        d = Decision.objects.create(client=client_obj, agent=agent, kind="expiry", action=f"a{n}")
        Decision.objects.filter(pk=d.pk).update(created_at=base + timedelta(minutes=n))
        made.append(str(d.pk))
    body = _decisions(api, client_obj, limit=2, offset=1)
    assert body["total"] == 5
    assert [d["id"] for d in body["decisions"]] == [made[3], made[2]]
    assert api.get(f"/api/client/{client_obj.pk}/decisions", {"limit": 0}).status_code == 400


def test_another_clients_decisions_are_404(api, other_api, client_obj, agent):
    Decision.objects.create(client=client_obj, agent=agent, kind="expiry", action="x")
    r = other_api.get(f"/api/client/{client_obj.pk}/decisions")
    assert r.status_code == 404 and "x" not in r.content.decode().replace("\\n", "")
    assert other_api.get("/api/client/None/decisions").status_code == 404


def test_the_agent_admin_page_shows_its_decisions(admin_client, agent):
    Decision.objects.create(client=agent.client, agent=agent, kind="failover_pool", action="choose_spot",
                            reason="safe pool with the freshest price", target_pool_id="t3.medium.us-east-1b")
    page = admin_client.get(f"/admin/agents/agent/{agent.pk}/change/").content.decode()
    assert "safe pool with the freshest price" in page and "choose_spot" in page
