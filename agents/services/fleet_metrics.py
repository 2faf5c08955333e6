"""The fleet's gauges for /metrics (docs/OPERATIONS.md, "Health and metrics"), refreshed every minute
by a scheduled task: never per-agent labels, one row per status."""
from datetime import datetime

from django.db.models import Count, Max
from django.utils import timezone

from agents.models import Agent, AgentStatus
from ops.services import snapshot_store


def agents_metrics_snapshot(*, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    counts = dict(Agent.objects.order_by().values_list("status").annotate(n=Count("pk")))
    by_status = {status: counts.get(status, 0) for status in AgentStatus.values}
    stale = Agent.objects.stale(now=now).count()
    newest = Agent.objects.aggregate(newest=Max("last_heartbeat_at"))["newest"]
    samples = [("agents", {"status": status}, n) for status, n in by_status.items()]
    samples.append(("agents_stale", {}, stale))
    if newest is not None:
        samples.append(("agents_newest_heartbeat_timestamp_seconds", {}, newest.timestamp()))
    snapshot_store("agents", samples, now=now)
    return {"by_status": by_status, "stale": stale}
