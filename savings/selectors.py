"""Savings reads for the dashboard: one definition used by the stats card and /savings."""
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone as dt_tz
from decimal import Decimal

from django.db.models import Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from savings.models import SavingsSnapshot
from savings.services import DaySavings, savings_day_calculate

ZERO = Decimal("0")


def _live_days(*, client, now: datetime) -> list[DaySavings]:
    """Days the stored snapshots do not cover yet: today so far (always computed live), and yesterday
    while the daily job has not run. Computed on the fly, never written by a read."""
    today = now.astimezone(dt_tz.utc).date()
    yesterday = today - timedelta(days=1)
    live = [savings_day_calculate(client=client, day=today, now=now)]
    if not SavingsSnapshot.objects.filter(client=client, snapshot_date=yesterday).exists():
        live.append(savings_day_calculate(client=client, day=yesterday, now=now))
    return live


def _stored(*, client, live: list[DaySavings]):
    return SavingsSnapshot.objects.filter(client=client).exclude(snapshot_date__in=[d.day for d in live])


def client_savings_totals(*, client, today: date | None = None, now: datetime | None = None) -> dict:
    """`total_savings` (all days) and `monthly_savings` (this calendar month, UTC) in USD, as floats;
    today's savings so far included."""
    now = now or timezone.now()
    today = today or now.astimezone(dt_tz.utc).date()
    month_start = today.replace(day=1)
    live = _live_days(client=client, now=now)
    rows = _stored(client=client, live=live)
    total = rows.aggregate(s=Sum("total_savings"))["s"] or ZERO
    monthly = rows.filter(snapshot_date__gte=month_start).aggregate(s=Sum("total_savings"))["s"] or ZERO
    for d in live:
        total += d.savings
        if d.day >= month_start:
            monthly += d.savings
    return {"total_savings": float(round(total, 4)), "monthly_savings": float(round(monthly, 4))}


def client_savings(*, client, now: datetime | None = None) -> dict:
    """GET /api/client/{id}/savings (docs/API.md §2): totals, savings per month (newest first) and the
    cost-weighted average savings percent over all days."""
    now = now or timezone.now()
    today = now.astimezone(dt_tz.utc).date()
    month_start = today.replace(day=1)
    live = _live_days(client=client, now=now)
    by_month: dict[date, Decimal] = defaultdict(lambda: ZERO)
    total = monthly = ondemand_cost = ZERO
    for row in (
        _stored(client=client, live=live)
        .annotate(month=TruncMonth("snapshot_date"))
        .values("month")
        .annotate(s=Sum("total_savings"), od=Sum("ondemand_cost"))
    ):
        month = row["month"].date() if isinstance(row["month"], datetime) else row["month"]
        by_month[month] += row["s"] or ZERO
        ondemand_cost += row["od"] or ZERO
    for d in live:
        by_month[d.day.replace(day=1)] += d.savings
        ondemand_cost += d.ondemand_cost
    for month, s in by_month.items():
        total += s
        if month >= month_start:
            monthly += s
    percent = (total / ondemand_cost * 100) if ondemand_cost > 0 else ZERO
    return {
        "total_savings": float(round(total, 4)),
        "monthly_savings": float(round(monthly, 4)),
        "savings_by_month": [
            {"month": m.strftime("%Y-%m"), "savings": float(round(s, 4))} for m, s in sorted(by_month.items(), reverse=True)
        ],
        "average_savings_percent": float(round(percent, 2)),
    }
