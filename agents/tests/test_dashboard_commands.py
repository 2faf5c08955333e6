"""POST /api/agents/{id}/issue-switch-command (docs/API.md §2, §1.4)."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from agents.models import Command
from agents.tests.factories import AgentFactory, CommandFactory, SpotPoolFactory


@pytest.fixture
def agent(client_obj):
    current = SpotPoolFactory(az="us-east-1a", latest_price=Decimal("0.0100"))
    return AgentFactory(client=client_obj, current_pool=current, az="us-east-1a", current_mode="ondemand")


def issue(api, agent, **body):
    return api.post(f"/api/agents/{agent.pk}/issue-switch-command", body, format="json")


def test_spot_with_empty_pool_gets_a_concrete_pool_and_manual_priority(api, agent):
    SpotPoolFactory(az="us-east-1b", latest_price=Decimal("0.0131"))
    SpotPoolFactory(az="us-east-1c", latest_price=Decimal("0.0119"))
    r = issue(api, agent, target_mode="spot", target_pool_id="")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["success"] is True and isinstance(body["command_id"], str)
    command = Command.objects.get(pk=body["command_id"])
    assert command.target_pool_id == "t3.medium.us-east-1a"  # cheapest fresh pool (agent is on-demand)
    assert command.priority >= 50 and command.status == "pending"
    # The agent receives it with a concrete pool and a priority it labels "manual".
    (item,) = api.get(f"/api/agents/{agent.pk}/pending-commands").json()["commands"]
    assert item["id"] == body["command_id"]
    assert item["target_pool_id"] == "t3.medium.us-east-1a" and item["priority"] >= 50


def test_spot_agent_is_sent_to_another_pool(api, client_obj):
    current = SpotPoolFactory(az="us-east-1a", latest_price=Decimal("0.0100"))
    SpotPoolFactory(az="us-east-1b", latest_price=Decimal("0.0131"))
    agent = AgentFactory(client=client_obj, current_pool=current, current_mode="spot")
    r = issue(api, agent, target_mode="spot", target_pool_id="")
    assert Command.objects.get(pk=r.json()["command_id"]).target_pool_id == "t3.medium.us-east-1b"


def test_stale_prices_only_is_a_409_json(api, client_obj):
    SpotPoolFactory(az="us-east-1b", latest_price_at=timezone.now() - timedelta(days=2))
    agent = AgentFactory(client=client_obj, current_mode="ondemand")
    r = issue(api, agent, target_mode="spot", target_pool_id="")
    assert r.status_code == 409 and r.json()["success"] is False
    assert not Command.objects.exists()


def test_ondemand_command_has_no_pool(api, agent):
    r = issue(api, agent, target_mode="ondemand", target_pool_id="")
    assert r.status_code == 200
    command = Command.objects.get(pk=r.json()["command_id"])
    assert command.target_mode == "ondemand" and command.target_pool_id is None


def test_a_newer_command_supersedes_a_pending_one(api, agent):
    first = issue(api, agent, target_mode="ondemand", target_pool_id="").json()["command_id"]
    second = issue(api, agent, target_mode="spot", target_pool_id="").json()["command_id"]
    assert Command.objects.get(pk=first).status == "superseded"
    assert Command.objects.get(pk=second).status == "pending"
    (item,) = api.get(f"/api/agents/{agent.pk}/pending-commands").json()["commands"]
    assert item["id"] == second


def test_a_delivered_command_blocks_a_new_one_with_409(api, agent):
    CommandFactory(agent=agent, status="delivered")
    r = issue(api, agent, target_mode="ondemand", target_pool_id="")
    assert r.status_code == 409


@pytest.mark.parametrize("body", [{}, {"target_mode": "reserved"}, {"target_mode": "spot", "target_pool_id": 5}])
def test_bad_body_is_400(api, agent, body):
    r = api.post(f"/api/agents/{agent.pk}/issue-switch-command", body, format="json")
    assert r.status_code == 400
    assert not Command.objects.exists()
