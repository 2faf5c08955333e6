"""Daily savings (ARCHITECTURE.md §5): one definition, used by the daily job, the command and the dashboard.

Savings of a client on a UTC day = Σ over every instance-interval overlapping that day of
(on-demand hourly price − hourly price actually paid) × hours. A spot instance pays the latest spot
sample of its pool at or before each moment; an on-demand instance pays the on-demand price (saves 0).
Where a price is unknown the segment saves nothing (never the whole on-demand bill).
"""
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone as dt_tz
from decimal import Decimal
from typing import Callable, Iterable

from django.db import transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from agents.models import Instance, Mode, OnDemandPriceSample, SpotPool, SpotPriceSample, Switch
from clients.models import Client
from savings.models import SavingsSnapshot

ZERO = Decimal("0")
HOUR = Decimal(3600)
Q4 = Decimal("0.0001")
Q2 = Decimal("0.01")
PERCENT_LIMIT = Decimal("999.99")  # average_savings_percent is DECIMAL(5, 2)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=dt_tz.utc)
    return start, start + timedelta(days=1)


class PriceLine:
    """A price that changes at sample times: the latest sample at or before a moment is in effect."""

    def __init__(self, points: Iterable[tuple[datetime, Decimal]], before_first: bool = False):
        pts = sorted(points)
        self.times = [t for t, _ in pts]
        self.prices = [p for _, p in pts]
        # On-demand list prices are stable: before the first known quote, that quote applies.
        self.before_first = before_first

    def at(self, moment: datetime) -> Decimal | None:
        i = bisect_right(self.times, moment)
        if i == 0:
            return self.prices[0] if (self.before_first and self.prices) else None
        return self.prices[i - 1]

    def changes_between(self, a: datetime, b: datetime) -> list[datetime]:
        return [t for t in self.times if a < t < b]


EMPTY_LINE = PriceLine([])


@dataclass
class DaySavings:
    client_id: object
    day: date
    spot_hours: Decimal = ZERO
    ondemand_hours: Decimal = ZERO
    actual_cost: Decimal = ZERO
    ondemand_cost: Decimal = ZERO
    switch_count: int = 0
    details: list = field(default_factory=list)

    @property
    def savings(self) -> Decimal:
        return self.ondemand_cost - self.actual_cost

    @property
    def average_savings_percent(self) -> Decimal:
        if self.ondemand_cost <= 0:
            return ZERO
        pct = (self.savings / self.ondemand_cost * 100).quantize(Q2)
        return max(-PERCENT_LIMIT, min(PERCENT_LIMIT, pct))

    def as_row(self) -> dict:
        return {
            "total_savings": self.savings.quantize(Q4),
            "spot_hours": self.spot_hours.quantize(Q2),
            "ondemand_hours": self.ondemand_hours.quantize(Q2),
            "actual_cost": self.actual_cost.quantize(Q4),
            "ondemand_cost": self.ondemand_cost.quantize(Q4),
            "switch_count": self.switch_count,
            "average_savings_percent": self.average_savings_percent,
        }


def _spot_lines(*, pool_ids: set[str], start: datetime, end: datetime) -> dict[str, PriceLine]:
    """Every pool's price line over [start, end): the sample in effect at `start` plus the day's samples.
    Two queries whatever the number of pools."""
    if not pool_ids:
        return {}
    points: dict[str, list] = defaultdict(list)
    opening = SpotPriceSample.objects.filter(pool=OuterRef("pk"), observed_at__lte=start).order_by("-observed_at")
    for pool_id, price, at in SpotPool.objects.filter(pk__in=pool_ids).annotate(
        p=Subquery(opening.values("price")[:1]), t=Subquery(opening.values("observed_at")[:1])
    ).values_list("pk", "p", "t"):
        if price is not None:
            points[pool_id].append((at, price))
    for pool_id, price, at in SpotPriceSample.objects.filter(
        pool_id__in=pool_ids, observed_at__gt=start, observed_at__lt=end
    ).values_list("pool_id", "price", "observed_at"):
        points[pool_id].append((at, price))
    return {pid: PriceLine(pts) for pid, pts in points.items()}


def _ondemand_lines(*, keys: set[tuple[str, str]], start: datetime, end: datetime) -> dict[tuple, PriceLine]:
    """On-demand price line per (instance type, region): real quotes; the agent's fallback only when the
    server has no real quote for that type and region. One query per key for the opening quote, one for the day."""
    lines = {}
    for instance_type, region in keys:
        base = OnDemandPriceSample.objects.filter(instance_type=instance_type, region=region, observed_at__lt=end)
        for fallback in (False, True):
            rows = base.filter(is_fallback=fallback)
            opening = rows.filter(observed_at__lte=start).order_by("-observed_at").values_list("observed_at", "price")[:1]
            points = list(opening) + list(rows.filter(observed_at__gt=start).values_list("observed_at", "price"))
            if not points:  # the first quote may come after the day: on-demand prices hardly move
                points = list(
                    OnDemandPriceSample.objects.filter(instance_type=instance_type, region=region, is_fallback=fallback)
                    .order_by("observed_at")
                    .values_list("observed_at", "price")[:1]
                )
            if points:
                lines[(instance_type, region)] = PriceLine(points, before_first=True)
                break
    return lines


def _paid_until(inst: Instance, *, now: datetime, default: datetime) -> datetime:
    """Where an instance's interval ends: its stored end; else, when its agent has gone silent
    (offline, or no heartbeat within AGENT_HEARTBEAT_TIMEOUT), the agent's last sign of life (the
    stale sweep writes the same end, but runs only every few hours); else `default` (still running).
    Reads `agent_hb` and `agent_status`, annotated on the instance query."""
    from django.conf import settings

    if inst.ended_at is not None:
        return inst.ended_at
    hb = inst.agent_hb
    if inst.agent_status == "offline" or hb is None or hb < now - timedelta(seconds=settings.AGENT_HEARTBEAT_TIMEOUT):
        return hb or inst.started_at
    return default


def savings_day_calculate(*, client: Client, day: date, now: datetime | None = None) -> DaySavings:
    """Compute (without storing) one client's savings for one UTC day; today counts up to `now`."""
    now = now or timezone.now()
    start, day_end = day_bounds(day)
    end = min(day_end, now)
    result = DaySavings(client_id=client.pk, day=day)
    if end <= start:
        return result
    instances = list(
        Instance.objects.filter(client=client, started_at__lt=end)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=start))
        .only("instance_id", "instance_type", "region", "mode", "pool_id", "started_at", "ended_at")
        .annotate(agent_hb=F("agent__last_heartbeat_at"), agent_status=F("agent__status"))
    )
    spot = _spot_lines(pool_ids={i.pool_id for i in instances if i.mode == Mode.SPOT and i.pool_id}, start=start, end=end)
    ondemand = _ondemand_lines(keys={(i.instance_type, i.region) for i in instances}, start=start, end=end)
    for inst in instances:
        a = max(inst.started_at, start)
        b = min(_paid_until(inst, now=now, default=end), end)
        if b <= a or inst.mode not in (Mode.SPOT, Mode.ONDEMAND):
            continue  # mode unknown (v3 before its first pricing report): neither paid price nor savings known
        od_line = ondemand.get((inst.instance_type, inst.region), EMPTY_LINE)
        spot_line = spot.get(inst.pool_id, EMPTY_LINE) if inst.mode == Mode.SPOT else EMPTY_LINE
        cuts = sorted({a, b, *od_line.changes_between(a, b), *spot_line.changes_between(a, b)})
        for s, e in zip(cuts, cuts[1:]):
            hours = Decimal((e - s).total_seconds()) / HOUR
            od_price = od_line.at(s)
            paid = od_price if inst.mode == Mode.ONDEMAND else spot_line.at(s)
            if paid is None:
                paid = od_price  # unknown spot price: count no savings
            if od_price is None:
                od_price = paid  # unknown on-demand price: count no savings
            if inst.mode == Mode.SPOT:
                result.spot_hours += hours
            else:
                result.ondemand_hours += hours
            if paid is not None:
                result.actual_cost += paid * hours
                result.ondemand_cost += od_price * hours
    result.switch_count = Switch.objects.filter(client=client, initiated_at__gte=start, initiated_at__lt=end).count()
    return result


@transaction.atomic
def savings_compute_day(*, client: Client, day: date, now: datetime | None = None) -> SavingsSnapshot:
    """Compute and upsert the (client, day) snapshot. Recomputing writes nothing when nothing changed."""
    values = savings_day_calculate(client=client, day=day, now=now).as_row()
    snapshot = SavingsSnapshot.objects.select_for_update().filter(client=client, snapshot_date=day).first()
    if snapshot is None:
        snapshot, created = SavingsSnapshot.objects.get_or_create(client=client, snapshot_date=day, defaults=values)
        if created:
            return snapshot
    changed = [name for name, value in values.items() if getattr(snapshot, name) != value]
    if changed:
        for name in changed:
            setattr(snapshot, name, values[name])
        snapshot.save(update_fields=changed + ["updated_at"])
    return snapshot


@dataclass
class RangeSummary:
    days: int = 0
    clients: int = 0
    snapshots: int = 0
    total_savings: Decimal = ZERO


def savings_compute_range(
    *,
    day_from: date,
    day_to: date,
    clients: list[Client] | None = None,
    now: datetime | None = None,
    progress: Callable[[int, int, date], None] | None = None,
) -> RangeSummary:
    """Recompute every day of [day_from, day_to] for the given clients (default: all). One transaction
    per snapshot, so a long range holds no long lock and an interrupted run keeps what it finished."""
    now = now or timezone.now()
    clients = list(clients) if clients is not None else list(Client.objects.order_by("pk"))
    days = [day_from + timedelta(days=n) for n in range((day_to - day_from).days + 1)]
    summary = RangeSummary(days=len(days), clients=len(clients))
    for n, day in enumerate(days, start=1):
        for client in clients:
            snap = savings_compute_day(client=client, day=day, now=now)
            summary.snapshots += 1
            summary.total_savings += snap.total_savings
        if progress:
            progress(n, len(days), day)
    return summary


def savings_daily_run(*, now: datetime | None = None) -> RangeSummary:
    """The scheduled job: yesterday (final) and today so far, for every client."""
    now = now or timezone.now()
    today = now.astimezone(dt_tz.utc).date()
    return savings_compute_range(day_from=today - timedelta(days=1), day_to=today, now=now)
