from datetime import date, datetime, timedelta
from datetime import timezone as dt_tz
from decimal import Decimal
from types import SimpleNamespace

import pytest

import savings.selectors
from savings.models import SavingsSnapshot
from savings.selectors import client_savings, client_savings_totals
from savings.tests.helpers import at, instance, ondemand_price, pool, spot_price

pytestmark = pytest.mark.django_db
D = Decimal


def snap(client, day: date, savings: str, ondemand_cost: str = "0"):
    return SavingsSnapshot.objects.create(
        client=client, snapshot_date=day, total_savings=D(savings), ondemand_cost=D(ondemand_cost)
    )


def test_savings_endpoint_shape_and_numbers(api, client_obj, other_client, monkeypatch):
    # A fixed mid-month "now": today is always computed live, so on the 1st of a month a snapshot
    # stored for the month's first day would be today's and replaced (CI ran on a 1st).
    now = datetime(2026, 11, 15, 12, 0, tzinfo=dt_tz.utc)
    monkeypatch.setattr(savings.selectors, "timezone", SimpleNamespace(now=lambda: now))
    today = now.date()
    month_start = today.replace(day=1)
    last_month = (month_start - timedelta(days=1)).replace(day=1)
    snap(client_obj, month_start, "2.5", "5")
    snap(client_obj, last_month, "1.25", "5")
    snap(client_obj, last_month - timedelta(days=40), "4", "10")
    snap(client_obj, today - timedelta(days=1), "0", "0")  # yesterday is stored: not recomputed live
    snap(other_client, month_start, "1000", "2000")
    r = api.get(f"/api/client/{client_obj.pk}/savings")
    assert r.status_code == 200
    body = r.json()
    assert body["total_savings"] == 7.75
    assert body["monthly_savings"] == 2.5
    months = [m["month"] for m in body["savings_by_month"]]
    assert months == sorted(months, reverse=True) and months[0] == today.strftime("%Y-%m")
    assert body["savings_by_month"][0]["savings"] == 2.5
    assert {"month": last_month.strftime("%Y-%m"), "savings": 1.25} in body["savings_by_month"]
    assert body["average_savings_percent"] == 38.75  # 7.75 / 20 x 100
    for key in ("total_savings", "monthly_savings", "average_savings_percent"):
        assert isinstance(body[key], (int, float)) and not isinstance(body[key], bool)


def test_another_clients_savings_is_404(api, other_client):
    for client_id in (other_client.pk, "None", "not-a-uuid"):
        r = api.get(f"/api/client/{client_id}/savings")
        assert r.status_code == 404
        assert r.json()


def test_savings_endpoint_needs_a_token(client_obj):
    from rest_framework.test import APIClient

    assert APIClient().get(f"/api/client/{client_obj.pk}/savings").status_code == 401


def test_totals_include_today_so_far_and_missing_yesterday(client_obj):
    p = pool()
    ondemand_price("0.04", at(1))
    spot_price(p, "0.01", at(1))
    instance(client_obj, mode="spot", p=p, start=at(9, 0))  # running since the 9th
    snap(client_obj, date(2026, 1, 8), "1", "2")  # stored; the 9th is not stored yet
    now = at(10, 4)
    totals = client_savings_totals(client=client_obj, now=now)
    # 1 (8th) + 24 h x 0.03 (9th, live) + 4 h x 0.03 (10th so far)
    assert totals == {"total_savings": 1.84, "monthly_savings": 1.84}
    full = client_savings(client=client_obj, now=now)
    assert full["total_savings"] == totals["total_savings"] and full["monthly_savings"] == totals["monthly_savings"]
    assert full["savings_by_month"] == [{"month": "2026-01", "savings": 1.84}]
    # cost-weighted: 1.84 / (2 + 0.96 + 0.16) x 100
    assert full["average_savings_percent"] == round(1.84 / 3.12 * 100, 2)
    # A read writes nothing.
    assert SavingsSnapshot.objects.filter(client=client_obj).count() == 1


def test_monthly_is_this_calendar_month(client_obj):
    snap(client_obj, date(2026, 1, 31), "3", "6")
    snap(client_obj, date(2026, 2, 1), "1", "2")
    totals = client_savings_totals(client=client_obj, now=at(3, 12, month=2))
    assert totals == {"total_savings": 4.0, "monthly_savings": 1.0}
    months = client_savings(client=client_obj, now=at(3, 12, month=2))["savings_by_month"]
    assert months == [{"month": "2026-02", "savings": 1.0}, {"month": "2026-01", "savings": 3.0}]
