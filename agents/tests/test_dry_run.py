"""Issue 9, item 7: dry-run per client. The server makes and records every automatic decision but tells
the agent nothing: `create_emergency_replica: false`, no automatic command queued or delivered; the
decision records say "would have". Default off; set in the admin and through the dashboard's settings
route (docs/API.md §2: the field is added, nothing renamed)."""
from decimal import Decimal

import pytest
from django.test import override_settings

from agents.models import AgentStatus, Command, Decision, Replica
from agents.tests.factories import AgentFactory, CommandFactory, SpotPoolFactory
from clients.models import Client
from clients.tests.factories import ClientFactory

pytestmark = pytest.mark.django_db
NOTICE = {"termination_time": "2025-01-01T00:02:00Z"}


@pytest.fixture
def agent(client_obj):
    a = SpotPoolFactory(az="us-east-1a", latest_price=Decimal("0.0125"))
    SpotPoolFactory(az="us-east-1b", latest_price=Decimal("0.0131"), risk_recommendation="safe")
    return AgentFactory(client=client_obj, current_pool=a, az="us-east-1a", auto_switch_enabled=True)


def _dry(api, agent, on=True):
    r = api.post(f"/api/client/agents/{agent.pk}/settings", {"dry_run": on}, format="json")
    assert r.status_code == 200, r.content
    return r.json()["settings"]


def test_default_off_and_the_settings_route_sets_it(api, client_obj, agent):
    assert ClientFactory().dry_run is False
    settings = _dry(api, agent)
    assert settings["dry_run"] is True
    assert set(settings) >= {"enabled", "auto_switch_enabled", "auto_terminate_enabled", "manual_replica_enabled",
                             "replica_count"}  # the existing wire contract, unchanged
    assert Client.objects.get(pk=client_obj.pk).dry_run is True
    # Together with agent settings, and off again.
    r = api.post(f"/api/client/agents/{agent.pk}/settings", {"dry_run": False, "replica_count": "2"}, format="json")
    assert r.json()["settings"]["dry_run"] is False and r.json()["settings"]["replica_count"] == 2
    assert api.post(f"/api/client/agents/{agent.pk}/settings", {"dry_run": "yes"}, format="json").status_code == 400


def test_termination_in_dry_run_asks_for_no_replica_and_says_would_have(api, client_obj, agent):
    _dry(api, agent)
    r = api.post(f"/api/agents/{agent.pk}/termination-imminent", {"instance_id": agent.instance_id, **NOTICE},
                 format="json")
    body = r.json()
    assert r.status_code == 200 and body["create_emergency_replica"] is False
    assert body["target_pool_id"] == "t3.medium.us-east-1b"  # the decision is still made...
    assert body["instructions"].startswith("Dry run")
    assert not Replica.objects.exists()
    decision = Decision.objects.get(agent=agent, kind="termination")
    assert decision.dry_run and decision.action == "create_emergency_replica"
    assert decision.summary.startswith("Would have")  # ...and recorded as what it would have done
    assert Decision.objects.get(agent=agent, kind="failover_pool").dry_run
    listed = api.get(f"/api/client/{client_obj.pk}/decisions").json()["decisions"]
    assert all(d["dry_run"] and d["summary"].startswith("Would have") for d in listed)
    agent.refresh_from_db()
    assert agent.status == AgentStatus.TERMINATING  # the facts are still recorded


@override_settings(TERMINATION_REPLICA_AUTO_CREATE=False)
def test_failover_switch_in_dry_run_is_recorded_never_queued(api, agent):
    _dry(api, agent)
    r = api.post(f"/api/agents/{agent.pk}/termination-imminent", {"instance_id": agent.instance_id, **NOTICE},
                 format="json")
    assert r.json()["action"] == "queue_failover_switch" and "command_id" not in r.json()
    assert not Command.objects.exists()
    switch = Decision.objects.get(agent=agent, kind="auto_switch")
    assert switch.dry_run and switch.command_id is None and switch.target_pool_id == "t3.medium.us-east-1b"
    polled = api.get(f"/api/agents/{agent.pk}/pending-commands", content_type="application/json").json()
    assert polled == {"commands": []}


def test_rebalance_switch_in_dry_run_is_recorded_never_queued(api, agent):
    _dry(api, agent)
    r = api.post(f"/api/agents/{agent.pk}/rebalance-recommendation", {"instance_id": agent.instance_id},
                 format="json")
    assert r.json()["action"] == "switch" and "command_id" not in r.json()
    assert not Command.objects.exists()
    assert Decision.objects.get(agent=agent, kind="auto_switch").dry_run
    assert Decision.objects.get(agent=agent, kind="rebalance").dry_run


def test_turning_dry_run_on_withdraws_pending_automatic_commands(api, agent):
    auto = CommandFactory(agent=agent, priority=30, source="rebalance")
    _dry(api, agent)
    assert Command.objects.get(pk=auto.pk).status == "superseded"
    assert api.get(f"/api/agents/{agent.pk}/pending-commands", content_type="application/json").json() == {
        "commands": []}


def test_without_dry_run_the_agent_is_told(api, agent):
    r = api.post(f"/api/agents/{agent.pk}/termination-imminent", {"instance_id": agent.instance_id, **NOTICE},
                 format="json")
    assert r.json()["create_emergency_replica"] is True
    assert not Decision.objects.filter(dry_run=True).exists()


def test_admin_shows_the_client_setting(admin_client, client_obj):
    page = admin_client.get(f"/admin/clients/client/{client_obj.pk}/change/").content.decode()
    assert 'name="dry_run"' in page
