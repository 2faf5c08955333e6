"""Replica endpoints and the replica state machine (docs/API.md §1.11, §1.12; docs/ARCHITECTURE.md §3)."""
from decimal import Decimal

import pytest

from agents.models import Instance, Replica, TerminationEvent
from agents.services.replicas import replica_transition, replicas_terminate
from agents.tests.factories import AgentFactory, ReplicaFactory, SpotPoolFactory
from spotbackend.exceptions import ConflictError

pytestmark = pytest.mark.django_db

EMERGENCY = {"instance_id": "i-r", "replica_type": "emergency", "parent_instance_id": None,
             "pool_id": "t3.medium.us-east-1a", "status": "ready"}


@pytest.fixture
def agent(client_obj):
    pool = SpotPoolFactory(az="us-east-1a", latest_price=Decimal("0.0125"))
    SpotPoolFactory(az="us-east-1b", latest_price=Decimal("0.0131"), risk_recommendation="safe")
    return AgentFactory(client=client_obj, current_pool=pool)


def url(agent, tail=""):
    return f"/api/agents/{agent.pk}/replicas{tail}"


def test_agent_emergency_body_links_the_notice_and_counts(api, agent):
    r = api.post(f"/api/agents/{agent.pk}/termination-imminent",
                 {"instance_id": agent.instance_id, "termination_time": "2025-01-01T00:02:00Z"}, format="json")
    assert r.json()["create_emergency_replica"] is True
    r = api.post(url(agent), {**EMERGENCY, "parent_instance_id": agent.instance_id}, format="json")
    assert r.status_code == 200, r.content
    replica_id = r.json()["replica_id"]
    assert isinstance(replica_id, str) and len(replica_id) == 36
    replica = Replica.objects.get(pk=replica_id)
    assert (replica.replica_type, replica.status, replica.pool_id) == ("emergency", "ready", "t3.medium.us-east-1a")
    assert replica.hourly_cost == Decimal("0.0125")
    event = TerminationEvent.objects.get(agent=agent)
    assert replica.termination_event == event and event.emergency_replica == replica
    agent.refresh_from_db()
    assert agent.emergency_replica_count == 1
    # A resend of the same registration is the same replica, counted once.
    again = api.post(url(agent), {**EMERGENCY, "parent_instance_id": agent.instance_id}, format="json")
    assert again.json()["replica_id"] == replica_id
    agent.refresh_from_db()
    assert agent.emergency_replica_count == 1


def test_create_emergency_replica_endpoint(api, agent):
    body = {"instance_id": "i-new-replica", "replica_type": "emergency", "parent_instance_id": "i-parent",
            "pool_id": "t3.medium.us-east-1b", "status": "ready"}
    r = api.post(f"/api/agents/{agent.pk}/create-emergency-replica", body, format="json")
    assert r.status_code == 200
    assert r.json()["success"] is True and r.json()["instance_id"] == "i-new-replica"
    agent.refresh_from_db()
    assert agent.emergency_replica_count == 1


def test_dashboard_manual_replica_with_empty_pool_gets_the_best_pool(api, agent):
    r = api.post(url(agent), {"target_pool_id": ""}, format="json")
    assert r.status_code == 200
    replica = Replica.objects.get(pk=r.json()["replica_id"])
    assert (replica.replica_type, replica.status, replica.pool_id) == ("manual", "launching", "t3.medium.us-east-1b")
    r = api.post(url(agent), {"target_pool_id": "t3.medium.us-east-1a"}, format="json")
    assert Replica.objects.get(pk=r.json()["replica_id"]).pool_id == "t3.medium.us-east-1a"


def test_manual_replica_refused_while_auto_switch_is_on(api, agent):
    agent.auto_switch_enabled = True
    agent.save()
    r = api.post(url(agent), {"target_pool_id": ""}, format="json")
    assert r.status_code == 409 and "auto switch" in r.json()["error"]


def test_delete_answers_200_with_the_message(api, agent):
    replica = ReplicaFactory(agent=agent, status="ready")
    r = api.delete(url(agent, f"/{replica.pk}"), content_type="application/json")
    assert r.status_code == 200
    assert r.json() == {"success": True, "message": "Replica terminated"}
    replica.refresh_from_db()
    assert replica.status == "terminated" and replica.terminated_at is not None
    # Terminating again is harmless; a promoted replica cannot be terminated through this path.
    assert api.delete(url(agent, f"/{replica.pk}")).status_code == 200
    promoted = ReplicaFactory(agent=agent, status="promoted")
    r = api.delete(url(agent, f"/{promoted.pk}"))
    assert r.status_code == 409 and "promoted" in r.json()["error"]


def test_another_clients_replica_is_404(api, other_api, agent, other_client):
    replica = ReplicaFactory(agent=agent)
    assert other_api.delete(url(agent, f"/{replica.pk}")).status_code == 404
    mine_elsewhere = AgentFactory(client=agent.client)
    assert api.delete(url(mine_elsewhere, f"/{replica.pk}")).status_code == 404
    assert api.delete(url(agent, "/None")).status_code == 404
    assert api.post(url(agent, "/not-a-uuid/promote")).status_code == 404


def test_promote_makes_the_replica_the_one_primary(api, agent):
    old_instance_id = agent.instance_id
    replica = ReplicaFactory(agent=agent, status="ready", instance_id="i-replica-x",
                             pool=SpotPoolFactory(az="us-east-1b"))
    r = api.post(url(agent, f"/{replica.pk}/promote"), content_type="application/json")
    assert r.status_code == 200 and r.json()["success"] is True
    agent.refresh_from_db()
    replica.refresh_from_db()
    assert replica.status == "promoted" and replica.promoted_at is not None
    assert agent.instance_id == "i-replica-x" and agent.current_pool_id == "t3.medium.us-east-1b"
    primaries = Instance.objects.filter(agent=agent, is_primary=True)
    assert [i.instance_id for i in primaries] == ["i-replica-x"]
    assert Instance.objects.get(agent=agent, instance_id=old_instance_id).state == "replaced"
    # Promoting again is idempotent; a terminated replica cannot be promoted (a launching one becomes a
    # switch: test_promote_flow.py).
    assert api.post(url(agent, f"/{replica.pk}/promote")).status_code == 200
    ended = ReplicaFactory(agent=agent, status="terminated")
    r = api.post(url(agent, f"/{ended.pk}/promote"))
    assert r.status_code == 409 and "terminated" in r.json()["error"]
    assert Instance.objects.filter(agent=agent, is_primary=True).count() == 1


def test_status_endpoint_walks_the_machine_and_refuses_going_back(api, agent):
    replica = ReplicaFactory(agent=agent, status="launching", instance_id="")
    for status in ("syncing", "ready"):
        r = api.post(url(agent, f"/{replica.pk}/status"), {"status": status, "instance_id": "i-rr"}, format="json")
        assert r.status_code == 200 and r.json()["status"] == status
    replica.refresh_from_db()
    assert replica.instance_id == "i-rr" and replica.ready_at is not None
    r = api.post(url(agent, f"/{replica.pk}/status"), {"status": "launching"}, format="json")
    assert r.status_code == 409
    assert "ready" in r.json()["error"] and "launching" in r.json()["error"]
    r = api.post(url(agent, f"/{replica.pk}/status"), {"status": "bogus"}, format="json")
    assert r.status_code == 400 and "status" in r.json()["error"]
    r = api.post(url(agent, f"/{replica.pk}/status"), {"status": "promoted"}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "promoted"
    agent.refresh_from_db()
    assert agent.instance_id == "i-rr"


@pytest.mark.parametrize(
    "start,to,ok",
    [
        ("launching", "syncing", True), ("launching", "ready", True), ("launching", "promoting", True),  # issue 9: promote through a switch
        ("syncing", "ready", True), ("syncing", "launching", False), ("ready", "promoting", True),
        ("ready", "syncing", False), ("promoting", "promoted", True), ("promoting", "ready", False),
        ("promoted", "terminated", False), ("terminated", "ready", False), ("ready", "terminated", True),
        ("promoting", "launching", False),
    ],
)
def test_replica_transition_table(agent, start, to, ok):
    replica = ReplicaFactory(agent=agent, status=start)
    if ok:
        assert replica_transition(replica=replica, to=to) is True
        assert Replica.objects.get(pk=replica.pk).status == to
    else:
        with pytest.raises(ConflictError):
            replica_transition(replica=replica, to=to)
        assert Replica.objects.get(pk=replica.pk).status == start


def test_replicas_terminate_ends_live_replicas_of_one_type(agent):
    live = [ReplicaFactory(agent=agent, replica_type="manual", status=s) for s in ("launching", "syncing", "ready")]
    done = ReplicaFactory(agent=agent, replica_type="manual", status="promoted")
    emergency = ReplicaFactory(agent=agent, replica_type="emergency", status="ready")
    other_agent = ReplicaFactory(replica_type="manual", status="ready")
    assert len(replicas_terminate(agent=agent, replica_type="manual")) == 3
    assert {Replica.objects.get(pk=r.pk).status for r in live} == {"terminated"}
    assert Replica.objects.get(pk=done.pk).status == "promoted"
    assert Replica.objects.get(pk=emergency.pk).status == "ready"
    assert Replica.objects.get(pk=other_agent.pk).status == "ready"
    assert replicas_terminate(agent=agent, replica_type="manual") == []


def test_replica_config(api, agent, settings):
    settings.TERMINATION_REPLICA_AUTO_CREATE = False
    ReplicaFactory(agent=agent, status="ready")
    ReplicaFactory(agent=agent, status="terminated")
    r = api.get(f"/api/agents/{agent.pk}/replica-config")
    assert r.status_code == 200
    body = r.json()
    assert body["emergency_replica_auto_create"] is False
    assert len(body["replicas"]) == 1 and isinstance(body["replicas"][0]["id"], str)
