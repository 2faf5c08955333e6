"""Savings reads for the dashboard: one definition used by the stats card and /savings."""
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from savings.models import SavingsSnapshot


def client_savings_totals(*, client, today=None) -> dict:
    """`total_savings` (all days) and `monthly_savings` (this calendar month, UTC) in USD, as floats."""
    today = today or timezone.now().date()
    month_start = today.replace(day=1)
    rows = SavingsSnapshot.objects.filter(client=client)
    total = rows.aggregate(s=Sum("total_savings"))["s"] or Decimal("0")
    monthly = rows.filter(snapshot_date__gte=month_start).aggregate(s=Sum("total_savings"))["s"] or Decimal("0")
    return {"total_savings": float(total), "monthly_savings": float(monthly)}
