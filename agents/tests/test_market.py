"""Market data shared between clients (issue 10, item 2): one client's reports cannot change what
another client's decisions see (agents/services/market.py, docs/SECURITY.md "Market data")."""
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import SpotPool, SpotPriceSample, TerminationEvent
from agents.services.pool_policy import pool_for_failover as pool_failover_select
from agents.services.market import az_belongs_to_region, pool_in_cooldown, sample_time
from agents.services.pool_policy import pool_select
from agents.services.risk import pool_risk_analyze_all
from agents.tests import payloads as P
from agents.tests.factories import AgentFactory, SpotPoolFactory, TerminationEventFactory

pytestmark = pytest.mark.django_db

A1, B1, C1 = "t3.medium.us-east-1a", "t3.medium.us-east-1b", "t3.medium.us-east-1c"


def _iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def honest_report(api, agent):
    """Agent A's honest prices: 1c is the cheapest pool."""
    r = api.post(f"/api/agents/{agent.pk}/pricing-report",
                 P.pricing_v4(instance_id=agent.instance_id, collected_at=_iso(timezone.now())), format="json")
    assert r.status_code == 200, r.content
    assert r.json()["pools"] == 3 and "ignored" not in r.json()


def lie(other_api, liar):
    """Client B: a report dated 2099, a made-up pool at price 0, the real pool 1c at 9.99, on-demand
    claimed at 20; then a rebalance recommendation and a termination notice in 1c."""
    body = P.pricing_v4(instance_id=liar.instance_id, pool_id=C1, collected_at="2099-01-01T00:00:00Z",
                        on_demand=20, prices={"us-east-1c": 9.99})
    body["pricing"]["spot_pools"] += [
        {"pool_id": "t3.medium.us-east-1q", "instance_type": "t3.medium", "az": "us-east-1q", "price": 0},
        {"pool_id": "r5.large.us-east-1q", "instance_type": "r5.large", "az": "us-east-1q", "price": 0},
        {"pool_id": "t3.medium.eu-west-1a", "instance_type": "t3.medium", "az": "eu-west-1a", "price": 0.001},
        {"pool_id": "t3.medium.us-east-1b", "instance_type": "t3.medium", "az": "us-east-1b", "price": 0},
    ]
    r = other_api.post(f"/api/agents/{liar.pk}/pricing-report", body, format="json")
    assert r.status_code == 200, r.content
    ignored = {i["pool_id"]: i["reason"] for i in r.json()["ignored"]}
    assert set(ignored) >= {"t3.medium.us-east-1q", "r5.large.us-east-1q", "t3.medium.eu-west-1a", B1}
    assert ignored["t3.medium.us-east-1q"].startswith("pool_id:") and ignored[B1].startswith("price:")
    r = other_api.post(f"/api/agents/{liar.pk}/rebalance-recommendation",
                       {"instance_id": liar.instance_id, "detected_at": "2099-01-01T00:00:00Z"}, format="json")
    assert r.status_code == 200, r.content
    r = other_api.post(f"/api/agents/{liar.pk}/termination-imminent",
                       {"instance_id": liar.instance_id, "termination_time": "2099-01-01T00:02:00Z",
                        "detected_at": "2099-01-01T00:00:00Z"}, format="json")
    assert r.status_code == 200, r.content


def decisions(api, agent) -> dict:
    """What client A's server-side decisions and dashboard see."""
    now = timezone.now()
    dashboard = api.get(f"/api/client/instances/{agent.instance_id}/pricing").json()
    agent.refresh_from_db()
    current = SpotPool.objects.get(pk=A1)
    return {
        "failover": pool_failover_select(agent=agent, dying_pool=current).pool.pk,
        "switch": pool_select(instance_type="t3.medium", region="us-east-1", exclude_pool_ids=(A1,),
                              client_id=agent.client_id).pool.pk,
        "pools": sorted((p["pool_id"], p["price"], p["in_cooldown"], p["risk_recommendation"])
                        for p in dashboard["pools"]),
        "price_at_not_future": all(p["price_at"] is None or p["price_at"] <= _iso(now) for p in dashboard["pools"]),
        "ondemand": dashboard["ondemand_price"],
        "cooldown_1c": pool_in_cooldown(pool_id=C1, client_id=agent.client_id, now=now),
    }


def test_a_lying_client_changes_nothing_another_client_decides(api, other_api, client_obj, other_client):
    honest = AgentFactory(client=client_obj, current_pool=SpotPoolFactory(az="us-east-1a"), az="us-east-1a")
    liar = AgentFactory(client=other_client, current_pool=SpotPoolFactory(az="us-east-1c"), az="us-east-1c")
    honest_report(api, honest)
    pool_risk_analyze_all()
    before = decisions(api, honest)
    assert before["failover"] == C1 and before["switch"] == C1 and not before["cooldown_1c"]

    lie(other_api, liar)  # after A's report: no implausible quote, made-up pool or signal of B's counts
    pool_risk_analyze_all()
    after = decisions(api, honest)
    # On-demand quotes are still last-writer-wins (docs/SECURITY.md, "Market data"): B's claimed 20 shows
    # until A's next report; it does not raise the ceiling for B's spot quotes (the stored quote was A's).
    assert after.pop("ondemand") == 20.0
    assert after == {k: v for k, v in before.items() if k != "ondemand"}

    honest_report(api, honest)  # the order: A reports after the lie; 2099 pins nothing
    pool_risk_analyze_all()
    assert decisions(api, honest) == before
    # The dashboard's switch command goes where A's own data says.
    r = api.post(f"/api/agents/{honest.pk}/issue-switch-command", {"target_mode": "spot", "target_pool_id": ""},
                 format="json")
    assert r.status_code == 200, r.content
    assert r.json()["target_pool_id"] == C1

    # The liar's own decisions do see its own signals: 1c is cooling down for B only.
    assert pool_in_cooldown(pool_id=C1, client_id=other_client.pk, now=timezone.now())
    # Its samples are stored at the server's time, never in 2099.
    assert not SpotPriceSample.objects.filter(observed_at__gt=timezone.now()).exists()
    assert not TerminationEvent.objects.filter(detected_at__gt=timezone.now()).exists()
    assert not SpotPool.objects.filter(az__endswith="q").exists()


def test_signals_count_for_everyone_when_enough_clients_agree(client_obj, settings):
    settings.MARKET_EVIDENCE_QUORUM = 2
    now = timezone.now()
    third = AgentFactory(client=client_obj)
    SpotPoolFactory(az="us-east-1a", latest_price="0.05")
    pool = SpotPoolFactory(az="us-east-1b", latest_price="0.01")
    TerminationEventFactory(pool=pool, detected_at=now - timedelta(minutes=1))  # one other client
    assert not pool_in_cooldown(pool_id=pool.pk, client_id=third.client_id, now=now)
    assert pool_failover_select(agent=third, dying_pool=None, now=now).pool == pool
    TerminationEventFactory(pool=pool, detected_at=now - timedelta(minutes=1))  # a second one agrees
    assert pool_in_cooldown(pool_id=pool.pk, client_id=third.client_id, now=now)
    assert pool_failover_select(agent=third, dying_pool=None, now=now).pool.pk == A1
    # Outside the cooldown window nothing counts.
    later = now + timedelta(seconds=settings.POOL_COOLDOWN_SECONDS + 60)
    assert not pool_in_cooldown(pool_id=pool.pk, client_id=third.client_id, now=later)


def test_own_notice_counts_at_once(client_obj):
    now = timezone.now()
    agent = AgentFactory(client=client_obj)
    pool = SpotPoolFactory(az="us-east-1b")
    TerminationEventFactory(agent=agent, pool=pool, detected_at=now - timedelta(minutes=1))
    assert pool_in_cooldown(pool_id=pool.pk, client_id=client_obj.pk, now=now)


def test_quote_rules():
    now = timezone.now()
    assert sample_time(reported=now + timedelta(days=30000), now=now) == now
    assert sample_time(reported=now - timedelta(minutes=5), now=now) == now - timedelta(minutes=5)
    assert sample_time(reported=None, now=now) == now
    for az in ("us-east-1a", "us-east-1f", "us-west-2-lax-1a"):
        assert az_belongs_to_region(az=az, region=az.split("-1")[0] + "-1" if "lax" not in az else "us-west-2")
    for az, region in (("us-east-1q", "us-east-1"), ("us-east-1", "us-east-1"), ("eu-west-1a", "us-east-1"),
                       ("us-east-10a", "us-east-1"), ("us-east-1ab", "us-east-1")):
        assert not az_belongs_to_region(az=az, region=region)


def test_implausible_prices_are_dropped_and_the_rest_kept(api, client_obj):
    agent = AgentFactory(client=client_obj)
    body = P.pricing_v4(instance_id=agent.instance_id, collected_at=_iso(timezone.now()),
                        prices={"us-east-1a": 0.0125, "us-east-1b": 0.0625, "us-east-1c": 0.0624})
    r = api.post(f"/api/agents/{agent.pk}/pricing-report", body, format="json")
    assert r.status_code == 200, r.content
    # on-demand 0.0416 x 1.5 = 0.0624: 1b is above it
    assert r.json()["pools"] == 2
    assert [i["pool_id"] for i in r.json()["ignored"]] == [B1]
    assert "on-demand" in r.json()["ignored"][0]["reason"]
    assert SpotPriceSample.objects.filter(pool_id=A1).exists()
    assert not SpotPriceSample.objects.filter(pool_id=B1).exists()


def test_a_quote_cannot_file_a_pool_under_another_type(other_api, other_client):
    """Else a client could hide a pool from another client's choices by creating it first, mistyped."""
    liar = AgentFactory(client=other_client)
    body = P.pricing_v4(instance_id=liar.instance_id, collected_at=_iso(timezone.now()), prices={"us-east-1f": 0.01})
    body["pricing"]["spot_pools"][0]["instance_type"] = "m5.large"
    r = other_api.post(f"/api/agents/{liar.pk}/pricing-report", body, format="json")
    assert r.status_code == 200, r.content
    pool = SpotPool.objects.get(pk="t3.medium.us-east-1f")
    assert (pool.instance_type, pool.az, pool.region) == ("t3.medium", "us-east-1f", "us-east-1")
