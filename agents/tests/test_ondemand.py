"""The one on-demand price rule (agents/services/ondemand.py), single and bulk, and the bulk reads of
risk and savings that must give what one-at-a-time reads gave."""
import random
import statistics
from datetime import date
from decimal import Decimal

import pytest

from agents.services.ondemand import ondemand_price_get, ondemand_price_lines, ondemand_prices_get
from agents.services.risk import PriceStats
from savings.services import day_bounds, savings_compute_range, savings_day_calculate
from savings.models import SavingsSnapshot
from savings.tests.helpers import at, instance, ondemand_price, pool, spot_price

pytestmark = pytest.mark.django_db
D = Decimal
T3, M5 = ("t3.medium", "us-east-1"), ("m5.large", "us-east-1")


@pytest.fixture
def quotes():
    ondemand_price("0.04", at(1))                                   # t3: real, then a newer fallback
    ondemand_price("0.1", at(9), fallback=True)
    ondemand_price("0.045", at(10, 12))                             # a real price change on day 10
    ondemand_price("0.1", at(2), fallback=True, instance_type="m5.large")  # m5: only the stand-in
    ondemand_price("0.096", at(20), instance_type="m5.large")       # ... until a real quote on day 20


def test_latest_real_quote_else_the_fallback(quotes):
    assert ondemand_price_get(instance_type="t3.medium", region="us-east-1") == D("0.045")
    assert ondemand_price_get(instance_type="c5.large", region="us-east-1") is None
    assert ondemand_prices_get(keys=[T3, M5, ("c5.large", "us-east-1")]) == {T3: D("0.045"), M5: D("0.096")}
    assert ondemand_prices_get() == {T3: D("0.045"), M5: D("0.096")}
    # As of a moment: m5 had only its stand-in before day 20.
    assert ondemand_prices_get(keys=[T3, M5], at=at(15)) == {T3: D("0.045"), M5: D("0.1")}


def test_lines_over_a_day(quotes):
    start, end = day_bounds(date(2026, 1, 10))
    lines = ondemand_price_lines(keys=[T3, M5, ("c5.large", "us-east-1")], start=start, end=end)
    assert set(lines) == {T3, M5}
    assert lines[T3].at(at(10, 6)) == D("0.04") and lines[T3].at(at(10, 13)) == D("0.045")
    # m5's first real quote comes after the day: it still beats the stand-in, from the start.
    assert lines[M5].at(at(10, 6)) == D("0.096")


def test_price_stats_match_statistics_module():
    rnd = random.Random(3)
    for n in (2, 3, 17, 288):
        prices = [D(rnd.randrange(1, 50000)) / D(1000000) for _ in range(n)]
        stats = PriceStats.of(prices)
        floats = [float(p) for p in prices]
        assert stats.mean() == pytest.approx(statistics.fmean(floats), rel=1e-15)
        assert stats.pstdev() == pytest.approx(statistics.pstdev(floats), rel=1e-12)


def test_all_clients_at_once_equals_one_client_at_a_time(client_obj, other_client):
    pools = [pool(az) for az in ("us-east-1a", "us-east-1b")]
    ondemand_price("0.04", at(1))
    for n, p in enumerate(pools):
        spot_price(p, f"0.01{n}", at(9))
        spot_price(p, f"0.02{n}", at(10, 12))
    instance(client_obj, mode="spot", p=pools[0], start=at(9, 18), end=at(10, 7))
    instance(client_obj, mode="ondemand", start=at(10, 7))
    instance(other_client, mode="spot", p=pools[1], start=at(10, 3), end=at(10, 20))
    day = date(2026, 1, 10)
    one_by_one = {c.pk: savings_day_calculate(client=c, day=day, now=at(12)).as_row() for c in (client_obj, other_client)}
    summary = savings_compute_range(day_from=day, day_to=day, now=at(12))
    stored = {s.client_id: s for s in SavingsSnapshot.objects.filter(snapshot_date=day)}
    assert summary.snapshots == 2 and set(stored) == set(one_by_one)
    for client_id, row in one_by_one.items():
        assert {k: getattr(stored[client_id], k) for k in row} == row
    assert summary.total_savings == sum(r["total_savings"] for r in one_by_one.values())
    assert one_by_one[other_client.pk]["total_savings"] > 0
