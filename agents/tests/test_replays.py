"""Issue 9, item 4: replays are harmless. The same switch report, cleanup report or executed callback
sent again (a proxy or a restart can replay; the agent itself never retries) changes nothing and
answers 200 with the original result."""
import pytest
from django.forms.models import model_to_dict

from agents.models import Agent, Command, Instance, Switch, SystemEvent
from agents.tests import payloads as P
from agents.tests.factories import AgentFactory, CommandFactory
from cleanup.models import CleanupLog
from cleanup.tests.test_api import REPORT

pytestmark = pytest.mark.django_db


def _state(agent):
    agent = Agent.objects.get(pk=agent.pk)
    return (
        {k: v for k, v in model_to_dict(agent).items()},
        sorted((i.instance_id, i.state, i.is_primary, i.started_at, i.ended_at)
               for i in Instance.objects.filter(agent=agent)),
        SystemEvent.objects.filter(agent=agent).count(),
    )


def test_switch_report_replay_adds_nothing(api, client_obj):
    r = api.post("/api/agents/register", P.register_v4(token=client_obj.token, mode="ondemand"), format="json")
    agent = Agent.objects.get(pk=r.json()["agent_id"])
    body = P.switch_report_v4()
    first = api.post(f"/api/agents/{agent.pk}/switch-report", body, format="json")
    assert first.status_code == 200
    before = _state(agent)
    again = api.post(f"/api/agents/{agent.pk}/switch-report", body, format="json")
    assert again.status_code == 200 and again.json() == first.json()
    assert Switch.objects.filter(agent=agent).count() == 1
    assert _state(agent) == before
    stats = api.get(f"/api/client/{client_obj.pk}").json()
    assert stats["total_switches"] == 1
    assert api.get(f"/api/client/{client_obj.pk}/switches").json()["total"] == 1


def test_a_different_switch_of_the_same_agent_is_recorded(api, client_obj):
    r = api.post("/api/agents/register", P.register_v4(token=client_obj.token, mode="ondemand"), format="json")
    agent_id = r.json()["agent_id"]
    api.post(f"/api/agents/{agent_id}/switch-report", P.switch_report_v4(), format="json")
    api.post(f"/api/agents/{agent_id}/switch-report",
             P.switch_report_v4(old_id="i-0bbb2222", new_id="i-0ccc3333", old_mode="spot", new_mode="ondemand"),
             format="json")
    assert Switch.objects.filter(agent_id=agent_id).count() == 2


def test_executed_callback_replay_keeps_the_first_outcome(api, client_obj):
    agent = AgentFactory(client=client_obj)
    command = CommandFactory(agent=agent, status="delivered")
    url = f"/api/agents/{agent.pk}/commands/{command.pk}/executed"
    first = api.post(url, {"success": True, "message": "switched"}, format="json")
    assert first.status_code == 200
    row = model_to_dict(Command.objects.get(pk=command.pk))
    before = _state(agent)
    again = api.post(url, {"success": True, "message": "switched"}, format="json")
    assert again.status_code == 200 and again.json() == first.json()
    assert model_to_dict(Command.objects.get(pk=command.pk)) == row
    assert _state(agent) == before


def test_cleanup_report_replay_changes_nothing(api, client_obj):
    agent = AgentFactory(client=client_obj)
    url = f"/api/agents/{agent.pk}/cleanup-report"
    first = api.post(url, REPORT, format="json")
    rows = sorted(model_to_dict(c).items() for c in CleanupLog.objects.filter(agent=agent))
    before = _state(agent)
    again = api.post(url, REPORT, format="json")
    assert again.status_code == 200 and again.json() == first.json()
    assert sorted(model_to_dict(c).items() for c in CleanupLog.objects.filter(agent=agent)) == rows
    assert _state(agent) == before


@pytest.mark.parametrize("label,stored", [("manual", "manual"), ("model", "model"), ("Model", "model"),
                                          ("bespoke-label", "other"), (None, "manual")])
def test_switch_trigger_is_one_of_the_known_labels(label, stored):
    from agents.services.switches import switch_trigger_of

    assert switch_trigger_of(label) == stored


@pytest.mark.django_db
def test_the_database_refuses_a_trigger_outside_the_set(client_obj):
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    from agents.models import Switch
    from agents.tests.factories import AgentFactory

    agent = AgentFactory(client=client_obj)
    with pytest.raises(IntegrityError), transaction.atomic():
        Switch.objects.create(agent=agent, client=client_obj, trigger_type="free text", initiated_at=timezone.now())
