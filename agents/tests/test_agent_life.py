"""End to end: a real agent's whole normal life through the real URLs with docs/API.md's payloads."""
from decimal import Decimal

from agents.models import Agent, Command, Instance, SpotPriceSample, Switch
from agents.tests import payloads as P


def test_agent_whole_life(api, client_obj):
    token = client_obj.token
    # Register (v4, on-demand first).
    r = api.post("/api/agents/register", P.register_v4(token=token, mode="ondemand"), format="json")
    assert r.status_code == 200
    body = r.json()
    agent_id = body["agent_id"]
    assert body["client_id"] == str(client_obj.pk)
    assert body["config"]["enabled"] is True

    # Heartbeat, config.
    r = api.post(f"/api/agents/{agent_id}/heartbeat", P.heartbeat(mode="ondemand"), format="json")
    assert r.status_code == 200 and r.json()["success"] is True
    r = api.get(f"/api/agents/{agent_id}/config", content_type="application/json")
    assert r.status_code == 200 and r.json()["enabled"] is True

    # Pricing report from the on-demand instance: pool fields null, full spot_pools list.
    r = api.post(
        f"/api/agents/{agent_id}/pricing-report",
        P.pricing_v4(mode="ondemand", pool_id=None, collected_at="2099-01-01T00:00:00"),
        format="json",
    )
    assert r.status_code == 200, r.content
    assert SpotPriceSample.objects.count() == 3

    # The dashboard issues a spot command with an empty pool: the server resolves the best pool.
    from agents.services.commands import command_issue

    agent = Agent.objects.get(pk=agent_id)
    command = command_issue(agent=agent, target_mode="spot", target_pool_id="")
    assert command.target_pool_id == "t3.medium.us-east-1c"  # the cheapest of three unrated pools

    # The old instance polls: gets it once; the next poll gets nothing.
    r = api.get(f"/api/agents/{agent_id}/pending-commands", content_type="application/json")
    items = r.json()["commands"]
    assert [i["id"] for i in items] == [str(command.pk)]
    assert items[0] == {
        "id": str(command.pk),
        "target_mode": "spot",
        "target_pool_id": "t3.medium.us-east-1c",
        "priority": 50,
        "created_at": items[0]["created_at"],
    }
    assert api.get(f"/api/agents/{agent_id}/pending-commands").json()["commands"] == []
    assert Agent.objects.get(pk=agent_id).status == "switching"

    # The new instance registers first (same logical id): same agent, it is now the primary.
    r = api.post(
        "/api/agents/register",
        P.register_v4(token=token, instance_id="i-0bbb2222", mode="spot", az="us-east-1c"),
        format="json",
    )
    assert r.json()["agent_id"] == agent_id
    agent.refresh_from_db()
    assert agent.instance_id == "i-0bbb2222" and agent.current_mode == "spot" and agent.status == "online"
    assert agent.current_pool_id == "t3.medium.us-east-1c"
    command.refresh_from_db()
    assert command.status == "expired" and command.success is True
    # The new instance polls during the overlap: the command is not handed out again.
    assert api.get(f"/api/agents/{agent_id}/pending-commands").json()["commands"] == []

    # The old instance keeps heartbeating for a while: it must not re-point the agent.
    api.post(f"/api/agents/{agent_id}/heartbeat", P.heartbeat(mode="ondemand"), format="json")
    agent.refresh_from_db()
    assert agent.instance_id == "i-0bbb2222" and agent.current_mode == "spot"

    # Then it sends its switch report, the executed callback and an id-less offline heartbeat.
    r = api.post(
        f"/api/agents/{agent_id}/switch-report",
        P.switch_report_v4(old_id="i-0aaa1111", new_id="i-0bbb2222", new_az="us-east-1c"),
        format="json",
    )
    assert r.status_code == 200
    switch = Switch.objects.get()
    # On-demand 0.1 is the agent's fallback but the server has a real quote (0.0416): 0.0416 - 0.029.
    assert switch.savings_impact == Decimal("0.012600")
    assert switch.command_id == command.pk
    r = api.post(
        f"/api/agents/{agent_id}/commands/{command.pk}/executed", {"success": True, "message": "ok"}, format="json"
    )
    assert r.status_code == 200
    r = api.post(f"/api/agents/{agent_id}/heartbeat", {"status": "offline", "monitored_instances": []}, format="json")
    assert r.status_code == 200
    agent.refresh_from_db()
    assert agent.status == "online"  # the goodbye came from the old instance, the primary is alive
    assert agent.instance_id == "i-0bbb2222"

    # Exactly one primary, the history holds both instances.
    assert list(Instance.objects.filter(agent=agent, is_primary=True).values_list("instance_id", flat=True)) == [
        "i-0bbb2222"
    ]
    assert Instance.objects.get(instance_id="i-0aaa1111").state in ("replaced", "terminated")
    assert Command.objects.filter(agent=agent, is_open=True).count() == 0

    # The dashboard's view of the agent.
    r = api.get(f"/api/agents/{agent_id}")
    assert r.status_code == 200 and r.json()["instance_id"] == "i-0bbb2222"


def test_v3_agent_life(api, client_obj):
    r = api.post("/api/agents/register", P.register_v3(token=client_obj.token), format="json")
    agent_id = r.json()["agent_id"]
    agent = Agent.objects.get(pk=agent_id)
    assert agent.current_mode == "unknown"  # v3 says its mode only in pricing reports
    r = api.post(f"/api/agents/{agent_id}/heartbeat", {"status": "online", "monitored_instances": []}, format="json")
    assert r.status_code == 200
    r = api.post(f"/api/agents/{agent_id}/pricing-report", P.pricing_v3(), format="json")
    assert r.status_code == 200, r.content
    agent.refresh_from_db()
    assert agent.current_mode == "spot" and agent.current_pool_id == "t3.medium.us-east-1a"

    from agents.services.commands import command_issue

    command = command_issue(agent=agent, target_mode="ondemand")
    assert api.get(f"/api/agents/{agent_id}/pending-commands").json()["commands"][0]["id"] == str(command.pk)
    r = api.post(f"/api/agents/{agent_id}/switch-report", P.switch_report_v3(), format="json")
    assert r.status_code == 200, r.content
    r = api.post(f"/api/agents/{agent_id}/mark-command-executed", {"command_id": str(command.pk)}, format="json")
    assert r.status_code == 200
    command.refresh_from_db()
    assert command.status == "succeeded"
    agent.refresh_from_db()
    assert agent.instance_id == "i-0ddd4444" and agent.current_mode == "ondemand"
    switch = Switch.objects.get()
    # v3 sends 0.0 for an unknown price; ondemand side uses on-demand 0.0416.
    assert switch.savings_impact == Decimal("0.0125") - Decimal("0.0416")


def test_agent_life_through_a_termination_notice(api, client_obj):
    """Spot agent gets a notice, launches the emergency replica it is told to (once), the replica's
    agent registers and takes over; the dying instance's late calls change nothing."""
    token = client_obj.token
    agent_id = api.post("/api/agents/register", P.register_v4(token=token, mode="spot"), format="json").json()["agent_id"]
    api.post(f"/api/agents/{agent_id}/pricing-report", P.pricing_v4(collected_at="2099-01-01T00:00:00"), format="json")

    notice = {"instance_id": "i-0aaa1111", "termination_time": "2026-11-26T19:25:57Z",
              "detected_at": "2026-11-26T19:23:57.243454"}
    answers = [api.post(f"/api/agents/{agent_id}/termination-imminent", notice, format="json").json() for _ in range(3)]
    assert [a["create_emergency_replica"] for a in answers] == [True, False, False]
    assert answers[0]["success"] is True and answers[0]["target_pool_id"] != "t3.medium.us-east-1a"
    assert Agent.objects.get(pk=agent_id).status == "terminating"

    # The agent launches the replica in its own AZ (it ignores the target) and registers it.
    r = api.post(f"/api/agents/{agent_id}/replicas",
                 {"instance_id": "i-0rrr9999", "replica_type": "emergency", "parent_instance_id": "i-0aaa1111",
                  "pool_id": "t3.medium.us-east-1a", "status": "ready"}, format="json")
    assert r.status_code == 200
    replica_id = r.json()["replica_id"]

    # The replica's own agent boots and registers with the same logical id: it becomes the primary.
    r = api.post("/api/agents/register", P.register_v4(token=token, instance_id="i-0rrr9999"), format="json")
    assert r.json()["agent_id"] == agent_id
    agent = Agent.objects.get(pk=agent_id)
    assert agent.instance_id == "i-0rrr9999" and agent.status == "online"
    assert list(Instance.objects.filter(agent=agent, is_primary=True).values_list("instance_id", flat=True)) == [
        "i-0rrr9999"
    ]
    from agents.models import Replica, TerminationEvent

    assert Replica.objects.get(pk=replica_id).status == "promoted"
    event = TerminationEvent.objects.get(agent=agent)
    assert event.status == "resolved" and event.emergency_replica_id is not None

    # The dying instance keeps posting until AWS takes it: nothing moves back.
    api.post(f"/api/agents/{agent_id}/termination-imminent", notice, format="json")
    api.post(f"/api/agents/{agent_id}/heartbeat", P.heartbeat(instance_id="i-0aaa1111"), format="json")
    agent.refresh_from_db()
    assert agent.instance_id == "i-0rrr9999" and agent.status == "online"
    assert TerminationEvent.objects.filter(agent=agent).count() == 1
