"""Price history retention: old samples go in batches; what savings and risk still read stays."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test import override_settings

from agents.models import OnDemandPriceSample, SpotPriceSample
from agents.services.ondemand import ondemand_prices_get
from agents.services.retention import price_history_prune
from savings.services import savings_day_calculate
from savings.tests.helpers import at, instance, ondemand_price, pool, spot_price

pytestmark = pytest.mark.django_db
D = Decimal
NOW = at(20, month=5)  # 2026-05-20; a 90-day cutoff falls on 2026-02-19


@override_settings(SPOT_PRICE_RETENTION_DAYS=90, ONDEMAND_PRICE_RETENTION_DAYS=90)
def test_old_samples_go_the_last_before_the_cutoff_stays(client_obj):
    busy, quiet = pool("us-east-1a"), pool("us-east-1b")
    for d in range(1, 29):  # February, daily: the cutoff (Feb 19) falls inside
        spot_price(busy, f"0.0{d % 9 + 1}", at(d, 6, month=2))
    spot_price(busy, "0.05", at(10, month=5))
    spot_price(quiet, "0.03", at(3, month=1))  # its only sample, long ago: still its price today
    ondemand_price("0.04", at(1, month=1))
    ondemand_price("0.041", at(18, month=2))
    ondemand_price("0.1", at(17, month=2), fallback=True)
    ondemand_price("0.1", at(2, month=1), fallback=True)
    ondemand_price("0.042", at(1, month=4))
    agent_start = at(20, 0, month=2)
    instance(client_obj, mode="spot", p=busy, start=agent_start)
    day = date(2026, 2, 20)
    before = savings_day_calculate(client=client_obj, day=day, now=NOW)

    result = price_history_prune(now=NOW, batch=4)  # small batches: several statements

    cutoff = NOW - timedelta(days=90)
    assert cutoff == at(19, month=2)
    # busy: Feb 1..18 go except Feb 18 (the last before the cutoff); Feb 19 06:00 and later stay.
    kept = sorted(SpotPriceSample.objects.filter(pool=busy).values_list("observed_at", flat=True))
    assert kept[0] == at(18, 6, month=2) and at(17, 6, month=2) not in kept
    assert len(kept) == 1 + 10 + 1  # Feb 18, Feb 19..28, May 10
    assert SpotPriceSample.objects.filter(pool=quiet).count() == 1
    # On-demand: the last real and the last fallback quote before the cutoff stay, older ones go.
    assert sorted(OnDemandPriceSample.objects.values_list("observed_at", "is_fallback")) == [
        (at(17, month=2), True), (at(18, month=2), False), (at(1, month=4), False)
    ]
    assert result == {"spot_deleted": 17, "ondemand_deleted": 2}
    # What savings and risk read is unchanged.
    after = savings_day_calculate(client=client_obj, day=day, now=NOW)
    assert (after.savings, after.actual_cost, after.spot_hours) == (before.savings, before.actual_cost, before.spot_hours)
    assert ondemand_prices_get(keys=[("t3.medium", "us-east-1")]) == {("t3.medium", "us-east-1"): D("0.042")}
    # Running it again finds nothing to do.
    assert price_history_prune(now=NOW) == {"spot_deleted": 0, "ondemand_deleted": 0}


@override_settings(SPOT_PRICE_RETENTION_DAYS=0, ONDEMAND_PRICE_RETENTION_DAYS=0)
def test_zero_keeps_everything():
    p = pool()
    spot_price(p, "0.01", at(1, month=1))
    spot_price(p, "0.02", at(2, month=1))
    ondemand_price("0.04", at(1, month=1))
    ondemand_price("0.05", at(2, month=1))
    assert price_history_prune(now=NOW) == {"spot_deleted": 0, "ondemand_deleted": 0}
    assert SpotPriceSample.objects.count() == 2 and OnDemandPriceSample.objects.count() == 2


def test_the_job_is_scheduled_and_registered():
    from spotbackend.celery import app
    from spotbackend.schedule import scheduled_jobs

    job = {j.name: j for j in scheduled_jobs()}["Price history retention"]
    app.loader.import_default_modules()
    assert job.task in app.tasks
