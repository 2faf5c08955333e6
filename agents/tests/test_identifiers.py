"""Identifiers compare byte for byte (issue 10, item 6): case, trailing spaces and different emoji make
different logical agents, instances and pools; the serializers keep ids as sent (no trimming)."""
import pytest

from agents.models import Agent, Instance, SpotPool
from agents.tests import payloads as P
from agents.tests.factories import AgentFactory, CommandFactory

pytestmark = pytest.mark.django_db

PAIRS = [("CaseTest", "casetest"), ("pad-x", "pad-x   "), ("emoji-🚀", "emoji-💥"), ("straße", "strasse")]


def register(api, client_obj, **over):
    r = api.post("/api/agents/register", P.register_v4(token=client_obj.token, **over), format="json")
    assert r.status_code in (200, 201), r.content
    return r.json()["agent_id"]


@pytest.mark.parametrize("a,b", PAIRS)
def test_logical_agent_ids_are_exact(api, client_obj, a, b):
    first = register(api, client_obj, logical_agent_id=a, instance_id="i-0aaa1111")
    second = register(api, client_obj, logical_agent_id=b, instance_id="i-0bbb2222")
    assert first != second
    assert set(Agent.objects.values_list("logical_agent_id", flat=True)) == {a, b}
    # Re-registering each returns its own agent: neither takes the other's primary role.
    assert register(api, client_obj, logical_agent_id=a, instance_id="i-0aaa1111") == first
    assert register(api, client_obj, logical_agent_id=b, instance_id="i-0bbb2222") == second
    assert Agent.objects.get(pk=first).instance_id == "i-0aaa1111"
    assert Agent.objects.filter(logical_agent_id=a).count() == 1


@pytest.mark.parametrize("a,b", PAIRS)
def test_instance_ids_are_exact(client_obj, a, b):
    agent = AgentFactory(client=client_obj)
    Instance.objects.create(agent=agent, client=client_obj, instance_id=a, started_at="2026-01-01T00:00Z",
                            is_primary=None, state="replaced")
    Instance.objects.create(agent=agent, client=client_obj, instance_id=b, started_at="2026-01-01T00:00Z",
                            is_primary=None, state="replaced")  # the unique key (agent, instance_id) holds
    assert Instance.objects.filter(agent=agent, instance_id=a).get().instance_id == a


@pytest.mark.parametrize("a,b", PAIRS)
def test_pool_ids_are_exact(a, b):
    SpotPool.objects.create(id=a, instance_type="t3.medium", region="us-east-1", az="us-east-1a")
    SpotPool.objects.create(id=b, instance_type="t3.medium", region="us-east-1", az="us-east-1a")
    assert SpotPool.objects.get(pk=a).pk == a and SpotPool.objects.get(pk=b).pk == b


def test_serializers_keep_identifiers_as_sent(api, client_obj):
    agent_id = register(api, client_obj, logical_agent_id="  spaced  ", instance_id=" i-0ccc3333 ")
    agent = Agent.objects.get(pk=agent_id)
    assert (agent.logical_agent_id, agent.instance_id) == ("  spaced  ", " i-0ccc3333 ")


def test_command_ids_are_exact(api, client_obj):
    agent = AgentFactory(client=client_obj)
    command = CommandFactory(agent=agent, status="delivered")
    exact = str(command.pk)
    for spelling in (exact.upper(), exact + " ", " " + exact, "{" + exact + "}", exact.replace("-", "")):
        r = api.post(f"/api/agents/{agent.pk}/mark-command-executed", {"command_id": spelling}, format="json")
        assert r.status_code == 404, spelling
        r = api.post(f"/api/agents/{agent.pk}/commands/{spelling.strip()}/executed", {}, format="json")
        assert r.status_code == 404 or spelling.strip() == exact, spelling
    r = api.post(f"/api/agents/{agent.pk}/mark-command-executed", {"command_id": exact}, format="json")
    assert r.status_code == 200, r.content
