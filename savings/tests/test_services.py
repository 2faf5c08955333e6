"""Hand-computed daily savings (docs/ARCHITECTURE.md §5). On-demand is 0.04 USD/h throughout unless said."""
from datetime import date
from decimal import Decimal

import pytest

from agents.tests.factories import AgentFactory, SwitchFactory
from savings.models import SavingsSnapshot
from savings.services import savings_compute_day, savings_day_calculate
from savings.tests.helpers import at, instance, ondemand_price, pool, spot_price

pytestmark = pytest.mark.django_db

DAY = date(2026, 1, 10)
D = Decimal


@pytest.fixture
def market():
    p = pool()
    ondemand_price("0.04", at(1))
    spot_price(p, "0.01", at(9))
    spot_price(p, "0.02", at(10, 12))  # the spot price doubles at noon of DAY
    return p


def test_interval_crossing_midnight_splits_between_days(client_obj, market):
    instance(client_obj, mode="spot", p=market, start=at(9, 18), end=at(10, 6))
    before = savings_compute_day(client=client_obj, day=date(2026, 1, 9))
    day = savings_compute_day(client=client_obj, day=DAY)
    # 9th 18:00-24:00 and 10th 00:00-06:00: 6 h each at 0.01 instead of 0.04.
    for snap in (before, day):
        assert snap.total_savings == D("0.1800")
        assert snap.spot_hours == D("6.00") and snap.ondemand_hours == D("0")
        assert snap.actual_cost == D("0.0600") and snap.ondemand_cost == D("0.2400")
        assert snap.average_savings_percent == D("75.00")


def test_spot_price_change_mid_interval(client_obj, market):
    instance(client_obj, mode="spot", p=market, start=at(10, 6), end=at(10, 18))
    snap = savings_compute_day(client=client_obj, day=DAY)
    # 06-12 at 0.01 (saves 6 x 0.03 = 0.18), 12-18 at 0.02 (saves 6 x 0.02 = 0.12).
    assert snap.total_savings == D("0.3000")
    assert snap.actual_cost == D("0.1800") and snap.ondemand_cost == D("0.4800")
    assert snap.spot_hours == D("12.00")
    assert snap.average_savings_percent == D("62.50")


def test_switch_spot_to_ondemand_mid_day(client_obj, market):
    agent = AgentFactory(client=client_obj, with_instance=False, current_mode="ondemand")
    instance(client_obj, agent=agent, mode="spot", p=market, start=at(9, 0), end=at(10, 12))
    instance(client_obj, agent=agent, mode="ondemand", start=at(10, 12))
    SwitchFactory(agent=agent, old_mode="spot", new_mode="ondemand", initiated_at=at(10, 11, 55))
    SwitchFactory(agent=agent, initiated_at=at(9, 3))  # another day: not counted
    snap = savings_compute_day(client=client_obj, day=DAY)
    # Spot 00-12 at 0.01 saves 0.36; on-demand 12-24 saves nothing but costs 0.48.
    assert snap.total_savings == D("0.3600")
    assert snap.spot_hours == D("12.00") and snap.ondemand_hours == D("12.00")
    assert snap.actual_cost == D("0.6000") and snap.ondemand_cost == D("0.9600")
    assert snap.switch_count == 1
    assert snap.average_savings_percent == D("37.50")


def test_instance_terminated_mid_day(client_obj, market):
    instance(client_obj, mode="spot", p=market, start=at(8), end=at(10, 8), state="terminated")
    snap = savings_compute_day(client=client_obj, day=DAY)
    assert snap.spot_hours == D("8.00")
    assert snap.total_savings == D("0.2400")  # 8 h x (0.04 - 0.01)


def test_client_without_instances_saves_nothing(client_obj, other_client, market):
    instance(other_client, mode="spot", p=market, start=at(9), end=None)  # another client's fleet
    snap = savings_compute_day(client=client_obj, day=DAY)
    assert (snap.total_savings, snap.actual_cost, snap.ondemand_cost) == (0, 0, 0)
    assert (snap.spot_hours, snap.ondemand_hours, snap.switch_count, snap.average_savings_percent) == (0, 0, 0, 0)


def test_unknown_spot_price_saves_nothing_never_the_ondemand_bill(client_obj):
    p = pool("us-east-1b")
    ondemand_price("0.04", at(1))
    spot_price(p, "0.01", at(10, 12))  # first sample at noon: the morning's price is unknown
    instance(client_obj, mode="spot", p=p, start=at(10, 0), end=at(10, 18))
    snap = savings_compute_day(client=client_obj, day=DAY)
    assert snap.total_savings == D("0.1800")  # only 12-18 counts: 6 x 0.03
    assert snap.spot_hours == D("18.00")


def test_real_ondemand_price_beats_the_agents_fallback(client_obj, market):
    ondemand_price("0.1", at(5), fallback=True)  # v4's stand-in when the Pricing API fails
    instance(client_obj, mode="spot", p=market, start=at(10, 0), end=at(10, 1))
    assert savings_compute_day(client=client_obj, day=DAY).total_savings == D("0.0300")


def test_today_counts_up_to_now(client_obj, market):
    instance(client_obj, mode="spot", p=market, start=at(9, 0))
    partial = savings_day_calculate(client=client_obj, day=DAY, now=at(10, 3))
    assert partial.spot_hours == 3 and partial.savings == D("0.09")
    assert savings_day_calculate(client=client_obj, day=date(2026, 1, 11), now=at(10, 3)).savings == 0


def test_recomputing_gives_the_same_row(client_obj, market):
    instance(client_obj, mode="spot", p=market, start=at(10, 6), end=at(10, 18))
    first = savings_compute_day(client=client_obj, day=DAY)
    second = savings_compute_day(client=client_obj, day=DAY)
    assert second.pk == first.pk
    assert SavingsSnapshot.objects.filter(client=client_obj).count() == 1
    again = SavingsSnapshot.objects.get(pk=first.pk)
    assert again.updated_at == first.updated_at  # nothing changed, nothing written
    assert again.total_savings == D("0.3000")


def test_recompute_fixes_a_wrong_row(client_obj, market):
    instance(client_obj, mode="spot", p=market, start=at(10, 6), end=at(10, 18))
    SavingsSnapshot.objects.create(client=client_obj, snapshot_date=DAY, total_savings=D("99"))
    assert savings_compute_day(client=client_obj, day=DAY).total_savings == D("0.3000")
    assert SavingsSnapshot.objects.get(client=client_obj, snapshot_date=DAY).total_savings == D("0.3000")


def test_queries_do_not_grow_with_instances(client_obj, django_assert_max_num_queries):
    ondemand_price("0.04", at(1))
    pools = [pool(az) for az in ("us-east-1a", "us-east-1b", "us-east-1c")]
    for p in pools:
        spot_price(p, "0.01", at(9))
        spot_price(p, "0.02", at(10, 12))
    for n in range(12):
        instance(client_obj, mode="spot", p=pools[n % 3], start=at(10, n), end=at(10, n + 1))
    with django_assert_max_num_queries(6):
        result = savings_day_calculate(client=client_obj, day=DAY, now=at(20))
    # Twelve one-hour intervals, all before noon: 12 h x (0.04 - 0.01).
    assert result.savings == D("0.36")
