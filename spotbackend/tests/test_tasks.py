"""The scheduled tasks run eagerly here (the real worker is in test_celery_live.py); each is idempotent."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone

from agents.models import Agent, PoolRiskAnalysis, SpotPool, SystemEvent
from agents.periodic import pool_risk_analysis, stale_agents_sweep
from agents.tests.factories import AgentFactory, SpotPoolFactory, SpotPriceSampleFactory
from savings.models import SavingsSnapshot
from savings.tasks import savings_calculate_daily
from savings.tests.helpers import at, instance, ondemand_price, pool, spot_price

pytestmark = pytest.mark.django_db


def test_savings_task_idempotent(client_obj, other_client):
    p = pool()
    ondemand_price("0.04", at(1))
    spot_price(p, "0.01", at(1))
    instance(client_obj, mode="spot", p=p, start=at(9), end=at(11))
    first = savings_calculate_daily.apply(kwargs={"day": "2026-01-10"}).get()
    assert first == {"days": 1, "clients": 2, "snapshots": 2, "total_savings": "0.7200"}
    rows = list(SavingsSnapshot.objects.order_by("pk").values())
    savings_calculate_daily.apply(kwargs={"day": "2026-01-10"}).get()
    assert list(SavingsSnapshot.objects.order_by("pk").values()) == rows


def test_savings_task_default_is_yesterday_and_today(client_obj):
    savings_calculate_daily.apply().get()
    today = timezone.now().date()
    assert set(SavingsSnapshot.objects.values_list("snapshot_date", flat=True)) == {today, today - timedelta(days=1)}


@override_settings(AGENT_HEARTBEAT_TIMEOUT=60)
def test_stale_task_idempotent(client_obj):
    AgentFactory(client=client_obj, last_heartbeat_at=timezone.now() - timedelta(minutes=5))
    AgentFactory(client=client_obj)
    assert stale_agents_sweep.apply().get() == {"marked_offline": 1}
    state = list(Agent.objects.order_by("pk").values("pk", "status", "updated_at"))
    events = SystemEvent.objects.count()
    assert stale_agents_sweep.apply().get() == {"marked_offline": 0}
    assert list(Agent.objects.order_by("pk").values("pk", "status", "updated_at")) == state
    assert SystemEvent.objects.count() == events == 1


def test_risk_task_idempotent_within_a_slot():
    pool_ = SpotPoolFactory(az="us-east-1a")
    SpotPriceSampleFactory(pool=pool_, price=Decimal("0.02"))
    result = pool_risk_analysis.apply().get()
    assert result["analyzed"] == 1
    rows = list(PoolRiskAnalysis.objects.values())
    pools = list(SpotPool.objects.values())
    pool_risk_analysis.apply().get()
    # A second run in the same 15-minute slot leaves that slot's row as it was (one straddling a slot
    # boundary may add the next slot's row, which is correct).
    assert list(PoolRiskAnalysis.objects.filter(analyzed_at=rows[0]["analyzed_at"]).values()) == rows
    assert list(SpotPool.objects.values()) == pools
