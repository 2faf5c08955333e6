"""Issue 9, item 2: *Promote* works with the agents that exist. The v4 agent never launches a manual
replica and never promotes: promoting one becomes a manual switch into the replica's pool, which the
agent executes like any dashboard switch; the replica is promoted when the new instance registers there.
The whole flow runs through the real URLs with the v4 agent's payloads and behaviour."""
import pytest

from agents.models import MANUAL_PRIORITY, Agent, Command, Instance, Replica
from agents.tests import payloads as P

pytestmark = pytest.mark.django_db


def test_promote_a_manual_replica_end_to_end_with_a_v4_agent(api, client_obj):
    token = client_obj.token
    agent_id = api.post("/api/agents/register", P.register_v4(token=token), format="json").json()["agent_id"]
    api.post(f"/api/agents/{agent_id}/pricing-report", P.pricing_v4(collected_at="2099-01-01T00:00:00"),
             format="json")

    # The dashboard asks for a manual replica (the server picks the pool), then clicks Promote.
    r = api.post(f"/api/agents/{agent_id}/replicas", {"target_pool_id": ""}, format="json")
    assert r.status_code == 200
    replica_id = r.json()["replica_id"]
    replica = Replica.objects.get(pk=replica_id)
    assert replica.status == "launching" and replica.pool_id == "t3.medium.us-east-1c"  # cheapest other pool
    r = api.post(f"/api/agents/{agent_id}/replicas/{replica_id}/promote", content_type="application/json")
    assert r.status_code == 200, r.content  # was 409 "still launching": the button could never work
    body = r.json()
    assert body["success"] is True and body["action"] == "switch_queued" and body["status"] == "promoting"
    assert "t3.medium.us-east-1c" in body["message"]

    # The v4 agent polls (every 15 s) and takes the first item: a manual switch into the replica's pool.
    r = api.get(f"/api/agents/{agent_id}/pending-commands?instance_id=i-0aaa1111", content_type="application/json")
    (command,) = r.json()["commands"]
    assert command["id"] == body["command_id"]
    assert command["target_mode"] == "spot" and command["target_pool_id"] == "t3.medium.us-east-1c"
    assert command["priority"] >= MANUAL_PRIORITY  # the agent labels it "manual"
    assert Agent.objects.get(pk=agent_id).status == "switching"

    # It executes the switch: the new instance boots in us-east-1c and registers under the same identity.
    r = api.post("/api/agents/register",
                 P.register_v4(token=token, instance_id="i-0ccc5555", az="us-east-1c"), format="json")
    assert r.json()["agent_id"] == agent_id and r.json()["is_primary"] is True
    replica.refresh_from_db()
    assert replica.status == "promoted" and replica.instance_id == "i-0ccc5555"
    assert replica.promoted_at is not None
    agent = Agent.objects.get(pk=agent_id)
    assert agent.instance_id == "i-0ccc5555" and agent.current_pool_id == "t3.medium.us-east-1c"
    assert agent.status == "online"

    # The old instance keeps heartbeating for five minutes, then reports the switch and the callback.
    api.post(f"/api/agents/{agent_id}/heartbeat", P.heartbeat(instance_id="i-0aaa1111"), format="json")
    r = api.post(f"/api/agents/{agent_id}/switch-report",
                 P.switch_report_v4(old_id="i-0aaa1111", new_id="i-0ccc5555", old_mode="spot", new_az="us-east-1c"),
                 format="json")
    assert r.status_code == 200
    r = api.post(f"/api/agents/{agent_id}/commands/{command['id']}/executed", {"success": True, "message": "ok"},
                 format="json")
    assert r.status_code == 200
    api.post(f"/api/agents/{agent_id}/heartbeat", {"status": "offline", "monitored_instances": []}, format="json")

    assert Command.objects.get(pk=command["id"]).success is True
    assert [i.instance_id for i in Instance.objects.filter(agent_id=agent_id, is_primary=True)] == ["i-0ccc5555"]
    listed = api.get(f"/api/client/{client_obj.pk}/replicas").json()["replicas"]
    assert [(r["id"], r["status"]) for r in listed] == [(replica_id, "promoted")]
    assert Agent.objects.get(pk=agent_id).status == "online"


def test_promote_landing_elsewhere_ends_the_replica_with_the_reason(api, client_obj):
    token = client_obj.token
    agent_id = api.post("/api/agents/register", P.register_v4(token=token), format="json").json()["agent_id"]
    api.post(f"/api/agents/{agent_id}/pricing-report", P.pricing_v4(collected_at="2099-01-01T00:00:00"),
             format="json")
    replica_id = api.post(f"/api/agents/{agent_id}/replicas", {"target_pool_id": "t3.medium.us-east-1b"},
                          format="json").json()["replica_id"]
    api.post(f"/api/agents/{agent_id}/replicas/{replica_id}/promote", content_type="application/json")
    api.get(f"/api/agents/{agent_id}/pending-commands", content_type="application/json")
    api.post("/api/agents/register", P.register_v4(token=token, instance_id="i-0ddd6666", mode="ondemand"),
             format="json")
    replica = Replica.objects.get(pk=replica_id)
    assert replica.status == "terminated" and "landed elsewhere" in replica.status_reason


def test_promoting_a_ready_replica_keeps_the_immediate_path(api, client_obj):
    token = client_obj.token
    agent_id = api.post("/api/agents/register", P.register_v4(token=token), format="json").json()["agent_id"]
    r = api.post(f"/api/agents/{agent_id}/replicas", {"instance_id": "i-r1", "replica_type": "emergency",
                                                       "pool_id": "t3.medium.us-east-1a", "status": "ready"},
                 format="json")
    r = api.post(f"/api/agents/{agent_id}/replicas/{r.json()['replica_id']}/promote", content_type="application/json")
    assert r.status_code == 200 and r.json()["action"] == "promoted" and r.json()["status"] == "promoted"
    assert Agent.objects.get(pk=agent_id).instance_id == "i-r1"
    assert not Command.objects.exists()
