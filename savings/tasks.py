"""Thin Celery tasks of the savings app: they call a service and return a small summary."""
from datetime import date

from celery import shared_task

from savings.services import savings_compute_range, savings_daily_run


@shared_task(name="savings.tasks.savings_calculate_daily")
def savings_calculate_daily(day: str | None = None) -> dict:
    """Yesterday (final) and today so far for every client; or just `day` (YYYY-MM-DD) when given."""
    if day:
        d = date.fromisoformat(day)
        summary = savings_compute_range(day_from=d, day_to=d)
    else:
        summary = savings_daily_run()
    return {"days": summary.days, "clients": summary.clients, "snapshots": summary.snapshots,
            "total_savings": str(summary.total_savings)}
