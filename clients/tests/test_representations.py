"""One serializer per representation (issue 12, item 3): the same replica, switch and agent look the
same wherever they are shown, money stays a JSON number, and an unknown price is never offered."""
from decimal import Decimal

from agents.tests.factories import AgentFactory, ReplicaFactory, SpotPoolFactory, SwitchFactory
from clients.tests.test_api import REPLICA_KEYS, is_number


def test_replica_cost_is_the_same_rule_in_the_list_the_detail_and_the_replica_config(api, client_obj):
    """Recorded cost, else the pool's latest price, else 0.0 (never null): one rule on every route."""
    pool = SpotPoolFactory(az="us-east-1b", latest_price=Decimal("0.0125"))
    unpriced = SpotPoolFactory(az="us-east-1c", latest_price=None)
    agent = AgentFactory(client=client_obj)
    recorded = ReplicaFactory(agent=agent, pool=pool, hourly_cost=Decimal("0.013"))
    from_pool = ReplicaFactory(agent=agent, pool=pool, hourly_cost=None)
    unknown = ReplicaFactory(agent=agent, pool=unpriced, hourly_cost=None)
    no_pool = ReplicaFactory(agent=agent, pool=None, hourly_cost=None)
    expected = {str(recorded.pk): 0.013, str(from_pool.pk): 0.0125, str(unknown.pk): 0.0, str(no_pool.pk): 0.0}

    listed = api.get(f"/api/client/{client_obj.pk}/replicas").json()["replicas"]
    config = api.get(f"/api/agents/{agent.pk}/replica-config").json()["replicas"]
    details = [api.get(f"/api/agents/{agent.pk}/replicas/{pk}").json() for pk in expected]
    for rows in (listed, config, details):
        assert {r["id"]: r["hourly_cost"] for r in rows} == expected
        assert all(is_number(r["hourly_cost"]) for r in rows)
    # The detail is the list's object plus its history.
    assert set(details[0]) == REPLICA_KEYS | {
        "parent_instance_id", "termination_event_id", "created_at", "ready_at", "promoted_at", "terminated_at"}
    assert {k: details[0][k] for k in REPLICA_KEYS} == next(r for r in listed if r["id"] == details[0]["id"])


def test_a_pool_with_an_unknown_price_is_never_the_cheapest(api, client_obj):
    current = SpotPoolFactory(az="us-east-1a", latest_price=Decimal("0.0125"))
    SpotPoolFactory(az="us-east-1b", latest_price=None, latest_price_at=None)  # seen, never priced
    agent = AgentFactory(client=client_obj, current_pool=current)
    body = api.get(f"/api/client/instances/{agent.instance_id}/pricing").json()
    assert body["cheapest_pool"] == {"pool_id": "t3.medium.us-east-1a", "price": 0.0125}
    unknown = next(p for p in body["pools"] if p["pool_id"] == "t3.medium.us-east-1b")
    assert unknown["price"] == 0.0 and unknown["price_at"] is None and unknown["is_fresh"] is False


def test_no_cheapest_pool_while_no_price_is_known(api, client_obj):
    current = SpotPoolFactory(az="us-east-1a", latest_price=None, latest_price_at=None)
    agent = AgentFactory(client=client_obj, current_pool=current)
    body = api.get(f"/api/client/instances/{agent.instance_id}/pricing").json()
    assert body["cheapest_pool"] is None
    assert body["current_spot_price"] == 0.0 and is_number(body["current_spot_price"])


def test_a_switch_is_the_same_on_the_stats_card_and_in_the_history(api, client_obj):
    agent = AgentFactory(client=client_obj)
    SwitchFactory(agent=agent, savings_impact=Decimal("0.0291"))
    recent = api.get(f"/api/client/{client_obj.pk}").json()["recent_switches"][0]
    listed = api.get(f"/api/client/{client_obj.pk}/switches").json()["switches"][0]
    assert {k: listed[k] for k in recent} == recent
    assert recent["savings_impact"] == 0.0291 and is_number(listed["savings_impact"])


def test_an_agent_is_the_same_in_the_list_and_the_detail(api, client_obj):
    agent = AgentFactory(client=client_obj)
    listed = api.get(f"/api/client/{client_obj.pk}/agents").json()["agents"][0]
    assert api.get(f"/api/agents/{agent.pk}").json() == listed
