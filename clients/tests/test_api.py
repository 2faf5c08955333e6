"""The dashboard's reads (docs/API.md §2): exact keys, numbers for money, string ids, ISO-8601 UTC times."""
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from agents.models import Instance, OnDemandPriceSample
from agents.tests.factories import AgentFactory, ReplicaFactory, SpotPoolFactory, SwitchFactory
from savings.models import SavingsSnapshot

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

STATS_KEYS = {
    "total_agents", "online_agents", "active_instances", "spot_instances", "total_switches",
    "switches_today", "total_savings", "monthly_savings", "recent_switches", "active_agents",
}
RECENT_SWITCH_KEYS = {"id", "old_instance_id", "new_instance_id", "old_mode", "new_mode", "savings_impact", "initiated_at"}
ACTIVE_AGENT_KEYS = {"id", "status", "hostname", "instance_id", "instance_type", "region", "current_mode"}
AGENT_KEYS = {
    "id", "hostname", "logical_agent_id", "instance_id", "instance_type", "az", "current_mode", "status",
    "last_heartbeat_at", "enabled", "auto_switch_enabled", "auto_terminate_enabled", "manual_replica_enabled",
    "replica_count",
}
INSTANCE_KEYS = {"id", "instance_type", "region", "az", "current_mode", "spot_price", "ondemand_price", "is_active"}
SWITCH_KEYS = {
    "id", "agent_id", "old_instance_id", "new_instance_id", "old_mode", "new_mode", "old_az", "new_az",
    "trigger_type", "savings_impact", "initiated_at",
}
REPLICA_KEYS = {"id", "agent_id", "instance_id", "replica_type", "pool_id", "status", "hourly_cost"}


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@pytest.fixture
def fleet(client_obj):
    """One spot agent on a priced pool, a switch, a replica, savings and an on-demand quote."""
    pool = SpotPoolFactory(az="us-east-1a", latest_price=Decimal("0.0125"))
    agent = AgentFactory(client=client_obj, current_pool=pool, az="us-east-1a")
    switch = SwitchFactory(agent=agent, savings_impact=Decimal("0.0291"), old_az="us-east-1b", new_az="us-east-1a")
    replica = ReplicaFactory(agent=agent, pool=pool, hourly_cost=Decimal("0.013"))
    OnDemandPriceSample.objects.create(
        instance_type="t3.medium", region="us-east-1", price=Decimal("0.0416"), observed_at=timezone.now()
    )
    # A stored past day (today is always computed live, from the instance history).
    SavingsSnapshot.objects.create(
        client=client_obj, snapshot_date=timezone.now().date() - timedelta(days=2), total_savings=Decimal("1.25")
    )
    return {"agent": agent, "pool": pool, "switch": switch, "replica": replica}


def test_stats_shape_and_values(api, client_obj, fleet):
    r = api.get(f"/api/client/{client_obj.pk}")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == STATS_KEYS
    for key in STATS_KEYS - {"recent_switches", "active_agents"}:
        assert is_number(body[key]), key
    assert body["total_agents"] == 1 and body["online_agents"] == 1
    assert body["active_instances"] == 1 and body["spot_instances"] == 1
    assert body["total_switches"] == 1 and body["switches_today"] == 1
    same_month = (timezone.now().date() - timedelta(days=2)).month == timezone.now().month
    assert body["total_savings"] == 1.25 and body["monthly_savings"] == (1.25 if same_month else 0)
    (recent,) = body["recent_switches"]
    assert set(recent) == RECENT_SWITCH_KEYS
    assert recent["id"] == str(fleet["switch"].pk)
    assert recent["savings_impact"] == 0.0291
    assert ISO_UTC.match(recent["initiated_at"])
    (active,) = body["active_agents"]
    assert set(active) == ACTIVE_AGENT_KEYS
    assert active["id"] == str(fleet["agent"].pk) and active["status"] == "online"


def test_stats_counts_a_silent_agent_offline_before_any_sweep(api, client_obj, settings):
    settings.AGENT_HEARTBEAT_TIMEOUT = 300
    AgentFactory(client=client_obj)
    AgentFactory(client=client_obj, last_heartbeat_at=timezone.now() - timedelta(seconds=301))
    body = api.get(f"/api/client/{client_obj.pk}").json()
    assert body["total_agents"] == 2
    assert body["online_agents"] == 1
    assert body["active_instances"] == 1
    assert len(body["active_agents"]) == 1


def test_stats_empty_client_is_all_zero(api, client_obj):
    body = api.get(f"/api/client/{client_obj.pk}").json()
    assert body["total_savings"] == 0 and body["monthly_savings"] == 0
    assert body["recent_switches"] == [] and body["active_agents"] == []


def test_agents_list_shape(api, client_obj, fleet):
    r = api.get(f"/api/client/{client_obj.pk}/agents")
    assert r.status_code == 200
    (agent,) = r.json()["agents"]
    assert set(r.json()) == {"agents"}
    assert set(agent) == AGENT_KEYS
    assert agent["id"] == str(fleet["agent"].pk)
    assert ISO_UTC.match(agent["last_heartbeat_at"])
    assert isinstance(agent["replica_count"], int) and agent["enabled"] is True


def test_agent_detail_is_the_same_object(api, client_obj, fleet):
    r = api.get(f"/api/agents/{fleet['agent'].pk}")
    assert r.status_code == 200
    assert r.json() == api.get(f"/api/client/{client_obj.pk}/agents").json()["agents"][0]


def test_agent_status_is_offline_once_the_heartbeat_is_too_old(api, client_obj, settings):
    settings.AGENT_HEARTBEAT_TIMEOUT = 120
    agent = AgentFactory(client=client_obj, status="online", last_heartbeat_at=timezone.now() - timedelta(seconds=121))
    assert api.get(f"/api/agents/{agent.pk}").json()["status"] == "offline"
    (listed,) = api.get(f"/api/client/{client_obj.pk}/agents").json()["agents"]
    assert listed["status"] == "offline"
    agent.refresh_from_db()
    assert agent.status == "online"  # derived on read, nothing persisted


def test_instances_shape(api, client_obj, fleet):
    r = api.get(f"/api/client/{client_obj.pk}/instances")
    assert r.status_code == 200
    assert set(r.json()) == {"instances"}
    (inst,) = r.json()["instances"]
    assert set(inst) == INSTANCE_KEYS
    assert inst["id"] == fleet["agent"].instance_id
    assert inst["spot_price"] == 0.0125 and inst["ondemand_price"] == 0.0416
    assert inst["is_active"] is True and inst["current_mode"] == "spot"


def test_instances_prefer_a_real_ondemand_quote_over_the_agents_fallback(api, client_obj, fleet):
    OnDemandPriceSample.objects.create(
        instance_type="t3.medium", region="us-east-1", price=Decimal("0.1"), is_fallback=True,
        observed_at=timezone.now() + timedelta(minutes=1),
    )
    (inst,) = api.get(f"/api/client/{client_obj.pk}/instances").json()["instances"]
    assert inst["ondemand_price"] == 0.0416


def test_instances_show_replaced_instances_as_inactive(api, client_obj, fleet):
    agent = fleet["agent"]
    Instance.objects.create(
        agent=agent, client=client_obj, instance_id="i-oldone", instance_type="t3.medium", region="us-east-1",
        az="us-east-1b", mode="ondemand", state="replaced", is_primary=None,
        started_at=timezone.now() - timedelta(days=1), ended_at=timezone.now() - timedelta(hours=2),
    )
    rows = {i["id"]: i for i in api.get(f"/api/client/{client_obj.pk}/instances").json()["instances"]}
    assert rows["i-oldone"]["is_active"] is False
    assert rows["i-oldone"]["spot_price"] == 0.0
    assert rows[agent.instance_id]["is_active"] is True


def test_instance_pricing(api, client_obj, fleet):
    SpotPoolFactory(az="us-east-1c", latest_price=Decimal("0.0119"))
    SpotPoolFactory(id="m5.large.us-east-1a", instance_type="m5.large", az="us-east-1a")  # other type: not listed
    r = api.get(f"/api/client/instances/{fleet['agent'].instance_id}/pricing")
    assert r.status_code == 200
    body = r.json()
    assert body["instance_id"] == fleet["agent"].instance_id
    assert body["current_pool_id"] == "t3.medium.us-east-1a"
    assert body["current_spot_price"] == 0.0125 and body["ondemand_price"] == 0.0416
    assert body["cheapest_pool"] == {"pool_id": "t3.medium.us-east-1c", "price": 0.0119}
    assert {p["pool_id"] for p in body["pools"]} == {"t3.medium.us-east-1a", "t3.medium.us-east-1c"}
    for pool in body["pools"]:
        assert is_number(pool["price"])


def test_instance_pricing_unknown_instance_is_404(api):
    r = api.get("/api/client/instances/i-doesnotexist/pricing")
    assert r.status_code == 404 and r.json()["success"] is False


def test_switches_shape_and_paging(api, client_obj, fleet):
    agent = fleet["agent"]
    now = timezone.now()
    for minutes in range(1, 5):
        SwitchFactory(agent=agent, initiated_at=now - timedelta(minutes=minutes))
    r = api.get(f"/api/client/{client_obj.pk}/switches")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"switches", "total"}
    assert body["total"] == 5 and len(body["switches"]) == 5
    first = body["switches"][0]
    assert set(first) == SWITCH_KEYS
    assert first["id"] == str(fleet["switch"].pk)  # newest first
    assert first["agent_id"] == str(agent.pk) and first["savings_impact"] == 0.0291
    assert first["old_az"] == "us-east-1b" and first["trigger_type"] == "manual"
    assert ISO_UTC.match(first["initiated_at"])
    page = api.get(f"/api/client/{client_obj.pk}/switches?limit=2&offset=3").json()
    assert page["total"] == 5
    assert [s["id"] for s in page["switches"]] == [s["id"] for s in body["switches"][3:5]]


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=501", "limit=abc", "limit=-1", "offset=-1", "offset=x", "limit=2.5",
     "offset=1446083853767981662208", "offset=1000000001"]
)
def test_switches_bad_paging_is_400(api, client_obj, query):
    r = api.get(f"/api/client/{client_obj.pk}/switches?{query}")
    assert r.status_code == 400
    assert r.json()["success"] is False
    assert query.split("=")[0] in r.json()["error"]


def test_switches_limit_500_is_allowed(api, client_obj):
    assert api.get(f"/api/client/{client_obj.pk}/switches?limit=500").status_code == 200


def test_replicas_shape(api, client_obj, fleet):
    r = api.get(f"/api/client/{client_obj.pk}/replicas")
    assert r.status_code == 200
    assert set(r.json()) == {"replicas"}
    (rep,) = r.json()["replicas"]
    assert set(rep) == REPLICA_KEYS
    assert rep["id"] == str(fleet["replica"].pk) and isinstance(rep["id"], str)
    assert rep["agent_id"] == str(fleet["agent"].pk)
    assert rep["pool_id"] == "t3.medium.us-east-1a"
    assert rep["hourly_cost"] == 0.013
    assert rep["replica_type"] == "emergency" and rep["status"] == "ready"


def test_replica_cost_falls_back_to_the_pool_price(api, client_obj, fleet):
    ReplicaFactory(agent=fleet["agent"], pool=fleet["pool"], hourly_cost=None)
    costs = [r["hourly_cost"] for r in api.get(f"/api/client/{client_obj.pk}/replicas").json()["replicas"]]
    assert sorted(costs) == [0.0125, 0.013]


def test_other_clients_rows_never_leak_into_lists(api, client_obj, other_client, fleet):
    stranger = AgentFactory(client=other_client)
    SwitchFactory(agent=stranger)
    ReplicaFactory(agent=stranger)
    ids = {str(stranger.pk)}
    for path, key in [("agents", "agents"), ("switches", "switches"), ("replicas", "replicas")]:
        rows = api.get(f"/api/client/{client_obj.pk}/{path}").json()[key]
        assert all(r.get("agent_id", r.get("id")) not in ids for r in rows)
    instances = api.get(f"/api/client/{client_obj.pk}/instances").json()["instances"]
    assert stranger.instance_id not in {i["id"] for i in instances}
    assert api.get(f"/api/client/instances/{stranger.instance_id}/pricing").status_code == 404
    stats = api.get(f"/api/client/{client_obj.pk}").json()
    assert stats["total_agents"] == 1 and stats["total_switches"] == 1


@pytest.mark.parametrize("suffix", ["", "/agents", "/instances", "/switches", "/replicas"])
@pytest.mark.parametrize("client_id", ["other", "None", "not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_a_client_id_that_is_not_the_callers_is_404(api, other_client, suffix, client_id):
    cid = str(other_client.pk) if client_id == "other" else client_id
    r = api.get(f"/api/client/{cid}{suffix}")
    assert r.status_code == 404
    assert r.json()["success"] is False


def test_dashboard_paths_have_no_trailing_slash_redirects(api, client_obj):
    assert api.get(f"/api/client/{client_obj.pk}/agents/").status_code == 404
