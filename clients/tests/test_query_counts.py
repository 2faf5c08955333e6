"""Dashboard lists make a fixed number of queries whatever the number of rows (issue 4, item 6)."""
from decimal import Decimal

import pytest

from agents.models import SpotPool
from agents.tests.factories import AgentFactory, ReplicaFactory, SpotPoolFactory, SwitchFactory

# Queries per call at most, authentication included (one query for the token).
EXPECTED = {
    # auth, agent counts, instance counts, switch counts, recent switches, active agents, and the savings
    # totals: stored days (2 aggregates) plus today and yesterday computed live (fixed per day).
    "stats": 16,
    "agents": 2,
    "instances": 3,  # auth, the instances, their on-demand prices (one statement for all)
    "switches": 3,  # auth, the page, the total
    "replicas": 2,
    "pricing": 5,  # auth, the instance, its on-demand price, the pools, their cooldowns for this client
}


def url(endpoint: str, client, agent) -> str:
    if endpoint == "stats":
        return f"/api/client/{client.pk}"
    if endpoint == "pricing":
        return f"/api/client/instances/{agent.instance_id}/pricing"
    return f"/api/client/{client.pk}/{endpoint}"


def make_rows(client, n: int):
    """n of everything a list shows: agents (each with its instance), switches, replicas, pools."""
    pool = SpotPoolFactory(az="us-east-1a", latest_price=Decimal("0.0125"))
    agents = [AgentFactory(client=client, current_pool=pool) for _ in range(n)]
    for agent in agents:
        SwitchFactory(agent=agent)
        ReplicaFactory(agent=agent, pool=pool)
    SpotPool.objects.bulk_create(
        [SpotPool(id=f"t3.medium.us-east-1-lz{i}", instance_type="t3.medium", region="us-east-1",
                  az=f"us-east-1-lz{i}", latest_price=Decimal("0.02")) for i in range(n - 1)]
    )
    return agents


@pytest.mark.parametrize("rows", [1, 50])
@pytest.mark.parametrize("endpoint", sorted(EXPECTED))
def test_list_query_count_is_fixed(endpoint, rows, api, client_obj, django_assert_max_num_queries):
    agents = make_rows(client_obj, rows)
    with django_assert_max_num_queries(EXPECTED[endpoint]):
        r = api.get(url(endpoint, client_obj, agents[0]))
    assert r.status_code == 200
    body = r.json()
    listed = {
        "stats": lambda: body["active_agents"],
        "agents": lambda: body["agents"],
        "instances": lambda: body["instances"],
        "switches": lambda: body["switches"],
        "replicas": lambda: body["replicas"],
        "pricing": lambda: body["pools"],
    }[endpoint]()
    assert len(listed) == rows  # the rows really were rendered
