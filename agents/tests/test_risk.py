from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from agents.models import OnDemandPriceSample, PoolRiskAnalysis, SpotPool, SystemEvent
from agents.services.pool_policy import pool_select
from agents.services.risk import pool_risk_analyze_all, risk_score_compute, risk_slot
from agents.tests.factories import SpotPoolFactory, SpotPriceSampleFactory, TerminationEventFactory
from notifications.models import Notification

pytestmark = pytest.mark.django_db
D = Decimal


def test_score_by_hand():
    # Prices 0.01 and 0.03: mean 0.02, population stdev 0.01, CV 0.5 -> volatility component 1.
    # Spot 0.03 of on-demand 0.1: ratio 0.3 -> no price pressure. One notice + two rebalances = 2 -> 1.
    r = risk_score_compute(prices=[D("0.01"), D("0.03")], latest_price=D("0.03"), ondemand_price=D("0.1"),
                           notices=1, rebalances=2)
    assert r["volatility"] == 0.5 and r["interruption_frequency"] == 2
    assert r["score"] == 0.8 and r["recommendation"] == "avoid"
    assert (r["avg"], r["min"], r["max"]) == (D("0.02"), D("0.01"), D("0.03"))
    assert r["metadata"]["components"] == {"volatility": 1.0, "price_pressure": 0.0, "interruptions": 1.0}
    # Steady price at 65 % of on-demand, no events: 0.2 x 0.5 = 0.1 -> safe.
    calm = risk_score_compute(prices=[D("0.065")] * 3, latest_price=D("0.065"), ondemand_price=D("0.1"),
                              notices=0, rebalances=0)
    assert calm["score"] == 0.1 and calm["recommendation"] == "safe" and calm["volatility"] == 0
    # One notice and spot at on-demand: 0.25 + 0.2 = 0.45 -> caution.
    busy = risk_score_compute(prices=[], latest_price=D("0.1"), ondemand_price=D("0.1"), notices=1, rebalances=0)
    assert busy["score"] == 0.45 and busy["recommendation"] == "caution" and busy["avg"] is None


def test_score_stays_in_unit_interval():
    r = risk_score_compute(prices=[D("0.001"), D("5")], latest_price=D("9"), ondemand_price=D("0.1"),
                           notices=50, rebalances=50)
    assert r["score"] == 1.0
    r = risk_score_compute(prices=[], latest_price=None, ondemand_price=None, notices=0, rebalances=0)
    assert r["score"] == 0.0 and r["recommendation"] == "safe"


@pytest.fixture
def now():
    """A moment at least 30 s before the end of its 15-minute slot (and never in the future), so a
    rerun a few seconds later is in the same slot whenever the suite runs."""
    real = timezone.now()
    return max(risk_slot(real), real - timedelta(seconds=30))


@pytest.fixture
def pools(now):
    OnDemandPriceSample.objects.create(instance_type="t3.medium", region="us-east-1", price=D("0.1"), observed_at=now)
    calm = SpotPoolFactory(az="us-east-1a", latest_price=D("0.03"), latest_price_at=now)
    risky = SpotPoolFactory(az="us-east-1b", latest_price=D("0.02"), latest_price_at=now)
    for n, price in enumerate(["0.03", "0.03", "0.03"]):
        SpotPriceSampleFactory(pool=calm, price=D(price), observed_at=now - timedelta(hours=n + 1))
    for n, price in enumerate(["0.01", "0.03", "0.02"]):
        SpotPriceSampleFactory(pool=risky, price=D(price), observed_at=now - timedelta(hours=n + 1))
    SpotPriceSampleFactory(pool=risky, price=D("5"), observed_at=now - timedelta(hours=30))  # outside 24 h
    return calm, risky


def test_analysis_rows_pool_fields_and_one_alert(pools, now, django_capture_on_commit_callbacks, monkeypatch, settings):
    calm, risky = pools
    sent = []
    settings.TERMINATION_NOTIFICATION_WEBHOOK = "http://127.0.0.1:9/hook"
    monkeypatch.setattr("notifications.tasks.notification_deliver_task.apply_async",
                        lambda args, **kw: sent.append(Notification.objects.get(pk=args[0]).text))
    TerminationEventFactory(agent__client__name="c", pool=risky, detected_at=now - timedelta(hours=2))
    TerminationEventFactory(pool=risky, detected_at=now - timedelta(hours=3))
    TerminationEventFactory(pool=risky, detected_at=now - timedelta(days=3))  # too old to count
    with django_capture_on_commit_callbacks(execute=True):
        summary = pool_risk_analyze_all(now=now)
    assert summary["analyzed"] == 2 and summary["entered_avoid"] == [risky.pk]
    rows = {r.pool_id: r for r in PoolRiskAnalysis.objects.all()}
    assert set(rows) == {calm.pk, risky.pk}
    r = rows[risky.pk]
    assert r.analyzed_at == risk_slot(now)
    assert r.recommendation == "avoid" and D("0") <= r.risk_score <= D("1")
    assert (r.avg_price_24h, r.min_price_24h, r.max_price_24h) == (D("0.02"), D("0.01"), D("0.03"))
    assert r.interruption_frequency == 2 and r.volatility > 0
    assert r.metadata["termination_notices"] == 2 and r.metadata["samples"] == 3
    assert rows[calm.pk].recommendation == "safe" and rows[calm.pk].volatility == 0
    calm.refresh_from_db()
    risky.refresh_from_db()
    assert risky.risk_recommendation == "avoid" and risky.risk_score == r.risk_score
    assert calm.risk_recommendation == "safe"
    assert len(sent) == 1 and risky.pk in sent[0]
    assert SystemEvent.objects.filter(event_type="pool_risk_avoid").count() == 1
    # The failover choice uses the latest score: the avoid pool is no candidate although cheaper.
    assert pool_select(instance_type="t3.medium", region="us-east-1", now=now).pool == calm

    # Again in the same slot: nothing changes, no second alert.
    before = list(PoolRiskAnalysis.objects.order_by("pk").values())
    with django_capture_on_commit_callbacks(execute=True):
        again = pool_risk_analyze_all(now=now + timedelta(seconds=5))
    assert again["entered_avoid"] == []
    assert list(PoolRiskAnalysis.objects.order_by("pk").values()) == before
    # A later slot: a new row per pool, still no second alert while the pool stays in avoid.
    with django_capture_on_commit_callbacks(execute=True):
        pool_risk_analyze_all(now=now + timedelta(minutes=15))
    assert PoolRiskAnalysis.objects.count() == 4
    assert len(sent) == 1
    assert SystemEvent.objects.filter(event_type="pool_risk_avoid").count() == 1


def test_rolled_back_run_leaves_nothing(pools, now, monkeypatch, settings):
    """Rows, pool fields and the (after-commit) webhook all go with the transaction."""
    from django.db import transaction

    sent = []
    settings.TERMINATION_NOTIFICATION_WEBHOOK = "http://127.0.0.1:9/hook"
    monkeypatch.setattr("notifications.tasks.notification_deliver_task.apply_async",
                        lambda args, **kw: sent.append(Notification.objects.get(pk=args[0]).text))
    _, risky = pools
    for h in (1, 2):
        TerminationEventFactory(pool=risky, detected_at=now - timedelta(hours=h))

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with transaction.atomic():
            pool_risk_analyze_all(now=now)
            raise Boom
    assert sent == [] and not PoolRiskAnalysis.objects.exists() and not Notification.objects.exists()
    assert SpotPool.objects.get(pk=risky.pk).risk_recommendation == ""


def test_a_rebalance_recommendation_floors_the_verdict_at_caution():
    # Issue 9, item 6: a calm pool (score 0.1, safe) with one rebalance recommendation in 24 h:
    # interruptions 0.5 x 1 / 2 = 0.25 -> + 0.5 x 0.25 = 0.125 -> score 0.225 (safe by score), floored to caution.
    r = risk_score_compute(prices=[D("0.065")] * 3, latest_price=D("0.065"), ondemand_price=D("0.1"),
                           notices=0, rebalances=1)
    assert r["score"] == 0.225 and r["recommendation"] == "caution"


def test_one_writer_the_risk_run_keeps_what_a_rebalance_signalled(api, client_obj):
    """Before: the rebalance handler wrote `caution` on the pool and the next 15-minute run silently
    overwrote it with `safe`. Now the handler writes only its signal and every run reads it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from agents.tests.factories import AgentFactory

    pool = SpotPoolFactory(az="us-east-1a", latest_price=D("0.0125"), risk_recommendation="safe")
    SpotPoolFactory(az="us-east-1b", latest_price=D("0.0131"), risk_recommendation="safe")
    agent = AgentFactory(client=client_obj, current_pool=pool, az="us-east-1a")
    with CaptureQueriesContext(connection) as ctx:
        r = api.post(f"/api/agents/{agent.pk}/rebalance-recommendation", {"instance_id": agent.instance_id},
                     format="json")
    assert r.status_code == 200
    assert not [q["sql"] for q in ctx if "risk_recommendation" in q["sql"] and q["sql"].startswith("UPDATE")]
    assert SpotPool.objects.get(pk=pool.pk).risk_recommendation == "safe"
    # A second client's recommendation in the pool: the shared analysis counts agreed signals only.
    other = AgentFactory(current_pool=pool, az="us-east-1a")
    assert other.client_id != client_obj.pk
    from agents.services.rebalance import rebalance_recommendation_handle
    from agents.services.termination_events import Notice

    rebalance_recommendation_handle(agent=other, notice=Notice(instance_id=other.instance_id))
    now = timezone.now()
    for run in range(3):  # three consecutive 15-minute runs
        pool_risk_analyze_all(now=now + timedelta(minutes=15 * run))
        assert SpotPool.objects.get(pk=pool.pk).risk_recommendation == "caution"
    assert PoolRiskAnalysis.objects.filter(pool=pool).first().metadata["rebalance_recommendations"] == 2


def test_a_rerun_of_the_slot_updates_changed_rows_in_place(pools, now, monkeypatch):
    """The analyses are written with one upsert per batch and the pools with one CASE statement per
    chunk: a rerun in the same slot after a new sample rewrites that pool's row (same row, new values)
    and its pool fields, and leaves the unchanged pool's row alone. Chunks of two pools here, so the
    statements' pairing of ids and values is checked across chunks."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from agents.services import price_lines, risk

    monkeypatch.setattr(risk, "chunks", lambda items: price_lines.chunks(items, 2))
    calm, risky = pools
    third = SpotPoolFactory(az="us-east-1c", latest_price=D("0.06"), latest_price_at=now)
    SpotPriceSampleFactory(pool=third, price=D("0.06"), observed_at=now - timedelta(hours=1))
    pool_risk_analyze_all(now=now)
    before = {r["pool_id"]: r for r in PoolRiskAnalysis.objects.values()}
    SpotPriceSampleFactory(pool=calm, price=D("0.04"), observed_at=now)  # in the window of a rerun, not the first run
    with CaptureQueriesContext(connection) as ctx:
        pool_risk_analyze_all(now=now + timedelta(seconds=5))
    after = {r["pool_id"]: r for r in PoolRiskAnalysis.objects.values()}
    assert set(after) == {calm.pk, risky.pk, third.pk}
    assert after[risky.pk] == before[risky.pk] and after[third.pk] == before[third.pk]
    new, old = after[calm.pk], before[calm.pk]
    assert (new["id"], new["created_at"], new["analyzed_at"]) == (old["id"], old["created_at"], old["analyzed_at"])
    assert new["max_price_24h"] == D("0.04") and new["metadata"]["samples"] == 4 and new["volatility"] > 0
    assert new["risk_score"] != old["risk_score"]
    inserts = [q["sql"] for q in ctx if q["sql"].startswith("INSERT INTO `pool_risk_analysis`")]
    assert len(inserts) == 1 and calm.pk in inserts[0] and risky.pk not in inserts[0]
    for pool in SpotPool.objects.all():
        row = after[pool.pk]
        assert (pool.risk_score, pool.risk_recommendation) == (row["risk_score"], row["recommendation"])
    # Three different scores (calm 0.1998, risky 0.3, third 0.0857): the CASE gave each pool its own.
    assert len({after[p]["risk_score"] for p in after}) == 3
