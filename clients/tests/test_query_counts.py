"""Dashboard lists make a bounded number of queries that does not grow with the number of rows
(issue 4, item 6). Counts are upper bounds, not exact pins: a harmless extra query in one place must
not break the suite, a query per row must."""
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.models import SpotPool
from agents.tests.factories import AgentFactory, ReplicaFactory, SpotPoolFactory, SwitchFactory

# At most this many queries per call, authentication included (one query for the token).
CEILING = {
    # auth, agent counts, instance counts, switch counts, recent switches, active agents, and the savings
    # totals: stored days (2 aggregates) plus today and yesterday computed live (fixed per day).
    "stats": 21,
    "agents": 2,
    "instances": 2,
    "switches": 3,  # auth, the page, the total
    "replicas": 2,
    "pricing": 5,  # auth, the instance (with its on-demand price), the pools, this client's own pool signals
}
LISTED = {
    "stats": "active_agents",
    "agents": "agents",
    "instances": "instances",
    "switches": "switches",
    "replicas": "replicas",
    "pricing": "pools",
}


def url(endpoint: str, client, agent) -> str:
    if endpoint == "stats":
        return f"/api/client/{client.pk}"
    if endpoint == "pricing":
        return f"/api/client/instances/{agent.instance_id}/pricing"
    return f"/api/client/{client.pk}/{endpoint}"


def add_rows(client, n: int, start: int = 0):
    """n more of everything a list shows: agents (each with its instance), switches, replicas, pools
    (the agents' own pool plus one other per row after the first)."""
    pool = SpotPool.objects.filter(pk="t3.medium.us-east-1a").first() or SpotPoolFactory(
        az="us-east-1a", latest_price=Decimal("0.0125")
    )
    agents = [AgentFactory(client=client, current_pool=pool) for _ in range(n)]
    for agent in agents:
        SwitchFactory(agent=agent)
        ReplicaFactory(agent=agent, pool=pool)
    SpotPool.objects.bulk_create(
        [SpotPool(id=f"t3.medium.us-east-1-lz{i}", instance_type="t3.medium", region="us-east-1",
                  az=f"us-east-1-lz{i}", latest_price=Decimal("0.02")) for i in range(max(start - 1, 0), start + n - 1)]
    )
    return agents


def queries_of(api, path: str, endpoint: str, rows: int) -> int:
    with CaptureQueriesContext(connection) as ctx:
        r = api.get(path)
    assert r.status_code == 200, r.content
    assert len(r.json()[LISTED[endpoint]]) == rows  # the rows really were rendered
    return len([q for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"]])


@pytest.mark.parametrize("endpoint", sorted(CEILING))
def test_list_query_count_is_bounded_and_does_not_grow_with_rows(endpoint, api, client_obj):
    agents = add_rows(client_obj, 1)
    path = url(endpoint, client_obj, agents[0])
    queries_of(api, path, endpoint, 1)  # caches (the token) warm, so both counts see the same path
    few = queries_of(api, path, endpoint, 1)
    add_rows(client_obj, 49, start=1)
    many = queries_of(api, path, endpoint, 50)
    assert many == few, f"{endpoint}: {few} queries for 1 row, {many} for 50"
    assert many <= CEILING[endpoint]
