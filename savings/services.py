"""Daily savings (docs/ARCHITECTURE.md §5): one definition, used by the daily job, the command and the dashboard.

Savings of a client on a UTC day = Σ over every instance-interval overlapping that day of
(on-demand hourly price − hourly price actually paid) × hours. A spot instance pays the latest spot
sample of its pool at or before each moment; an on-demand instance pays the on-demand price (saves 0).
Where a price is unknown the segment saves nothing (never the whole on-demand bill).
"""
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone as dt_tz
from decimal import Decimal
from typing import Callable

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from agents.models import Instance, Mode, Switch
from agents.services.ondemand import ondemand_price_lines
from agents.services.price_lines import EMPTY_LINE, PRICE_UNIT, PriceLine, chunks, micros, spot_lines
from clients.models import Client
from savings.models import SavingsSnapshot

ZERO = Decimal("0")
US_PER_HOUR = Decimal(3_600_000_000)
UNITS_PER_USD_HOUR = US_PER_HOUR * PRICE_UNIT
Q4 = Decimal("0.0001")
Q2 = Decimal("0.01")
PERCENT_LIMIT = Decimal("999.99")  # average_savings_percent is DECIMAL(5, 2)
CLIENT_BATCH = 500  # snapshots written per transaction
INSTANCE_FIELDS = ["client_id", "instance_type", "region", "mode", "pool_id", "started_at", "ended_at",
                   "agent__last_heartbeat_at", "agent__status"]
SNAPSHOT_FIELDS = ["total_savings", "spot_hours", "ondemand_hours", "actual_cost", "ondemand_cost", "switch_count",
                   "average_savings_percent"]


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=dt_tz.utc)
    return start, start + timedelta(days=1)


@dataclass
class DaySavings:
    """One client's day. Accumulated exactly in integers (microseconds; micro-USD x microseconds) and
    rounded once, in as_row, so the result does not depend on the order instances are added in."""

    client_id: object
    day: date
    spot_us: int = 0
    ondemand_us: int = 0
    actual_units: int = 0
    ondemand_units: int = 0
    switch_count: int = 0

    @property
    def spot_hours(self) -> Decimal:
        return Decimal(self.spot_us) / US_PER_HOUR

    @property
    def ondemand_hours(self) -> Decimal:
        return Decimal(self.ondemand_us) / US_PER_HOUR

    @property
    def actual_cost(self) -> Decimal:
        return Decimal(self.actual_units) / UNITS_PER_USD_HOUR

    @property
    def ondemand_cost(self) -> Decimal:
        return Decimal(self.ondemand_units) / UNITS_PER_USD_HOUR

    @property
    def savings(self) -> Decimal:
        return Decimal(self.ondemand_units - self.actual_units) / UNITS_PER_USD_HOUR

    @property
    def average_savings_percent(self) -> Decimal:
        if self.ondemand_units <= 0:
            return ZERO
        pct = (Decimal((self.ondemand_units - self.actual_units) * 100) / Decimal(self.ondemand_units)).quantize(Q2)
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


def _paid_until(inst: tuple, *, now: datetime, default: datetime) -> datetime:
    """Where an instance's interval ends: its stored end; else, when its agent has gone silent
    (offline, or no heartbeat within AGENT_HEARTBEAT_TIMEOUT), the agent's last sign of life (the
    stale sweep writes the same end, but runs only every few hours); else `default` (still running).
    `inst` is a row of INSTANCE_FIELDS."""
    started_at, ended_at, hb, status = inst[5:9]
    if ended_at is not None:
        return ended_at
    if status == "offline" or hb is None or hb < now - timedelta(seconds=settings.AGENT_HEARTBEAT_TIMEOUT):
        return hb or started_at
    return default


def _instance_add(result: DaySavings, inst: tuple, od_line: PriceLine, spot_line: PriceLine, start, end, now) -> None:
    """Add one instance-interval's share of [start, end) to the day's totals: the on-demand price
    over the interval against the price paid (spot: the pool's price; where the spot price is still
    unknown, the on-demand price, so that stretch saves nothing; where the on-demand price is unknown,
    the price paid, so nothing is saved either)."""
    mode, started_at = inst[3], inst[5]
    a = micros(max(started_at, start))
    b = micros(min(_paid_until(inst, now=now, default=end), end))
    if b <= a or mode not in (Mode.SPOT, Mode.ONDEMAND):
        return  # mode unknown (v3 before its first pricing report): neither paid price nor savings known
    ondemand = od_line.integral(a, b) if od_line else None
    if mode == Mode.ONDEMAND:
        result.ondemand_us += b - a
        if ondemand is not None:
            result.actual_units += ondemand
            result.ondemand_units += ondemand
        return
    result.spot_us += b - a
    paid = spot_line.integral(a, b)  # the stretch before the pool's first known price counts 0 here
    if ondemand is None:
        result.actual_units += paid
        result.ondemand_units += paid
        return
    known = spot_line.known_from()
    unknown_until = b if known is None else min(b, max(a, known))
    result.actual_units += paid + od_line.integral(a, unknown_until)
    result.ondemand_units += ondemand


def savings_days_calculate(*, day: date, client_ids: list | None = None, now: datetime | None = None) -> dict:
    """Compute (without storing) the savings of many clients (None: every client with an instance that
    day) on one UTC day; today counts up to `now`. Returns {client_id: DaySavings}.

    Each price is read once for all clients: the day's instances in one statement, the on-demand lines
    of every (type, region) in one (the one rule, agents/services/ondemand.py), then the spot pools 500
    at a time (one statement each) with the instances that ran in them. Memory follows one day's
    instances and 500 pools' samples, not the history kept."""
    now = now or timezone.now()
    start, day_end = day_bounds(day)
    end = min(day_end, now)
    results = {cid: DaySavings(client_id=cid, day=day) for cid in (client_ids or [])}
    if end <= start or client_ids == []:
        return results
    qs = Instance.objects.filter(started_at__lt=end).filter(Q(ended_at__isnull=True) | Q(ended_at__gt=start))
    if client_ids is not None:
        qs = qs.filter(client_id__in=client_ids)
    instances = list(
        qs.order_by("client_id", "-started_at", "id").values_list(*INSTANCE_FIELDS)
    )
    ondemand = ondemand_price_lines(keys={(i[1], i[2]) for i in instances}, start=start, end=end)
    in_pool: dict[str, list] = defaultdict(list)
    for inst in instances:
        result = results.get(inst[0]) or results.setdefault(inst[0], DaySavings(client_id=inst[0], day=day))
        if inst[3] == Mode.SPOT and inst[4]:
            in_pool[inst[4]].append(inst)
        else:
            _instance_add(result, inst, ondemand.get((inst[1], inst[2]), EMPTY_LINE), EMPTY_LINE, start, end, now)
    for part in chunks(sorted(in_pool)):
        spot = spot_lines(pool_ids=part, start=start, end=end)
        for pool_id in part:
            for inst in in_pool[pool_id]:
                od_line = ondemand.get((inst[1], inst[2]), EMPTY_LINE)
                _instance_add(results[inst[0]], inst, od_line, spot.get(pool_id, EMPTY_LINE), start, end, now)
    # Per client: ranges of the (client, initiated_at) index, not a scan of every switch ever made.
    switches = Switch.objects.filter(initiated_at__gte=start, initiated_at__lt=end)
    everyone = list(results) if client_ids is not None else list(Client.objects.values_list("pk", flat=True))
    for part in chunks(everyone):
        for client_id, n in (
            switches.filter(client_id__in=part).order_by().values("client_id").annotate(n=Count("id")).values_list("client_id", "n")
        ):
            results.setdefault(client_id, DaySavings(client_id=client_id, day=day)).switch_count = n
    return results


def savings_day_calculate(*, client: Client, day: date, now: datetime | None = None) -> DaySavings:
    """Compute (without storing) one client's savings for one UTC day; today counts up to `now`."""
    return savings_days_calculate(day=day, client_ids=[client.pk], now=now)[client.pk]


def _snapshots_write(*, day: date, days: list[DaySavings]) -> list[SavingsSnapshot]:
    """Upsert the (client, day) snapshots of a batch of clients in one short transaction: new rows
    inserted, changed rows updated, unchanged rows not written at all."""
    values = {d.client_id: d.as_row() for d in days}
    with transaction.atomic():
        existing = {
            s.client_id: s
            for s in SavingsSnapshot.objects.select_for_update().filter(client_id__in=list(values), snapshot_date=day)
        }
        new = [SavingsSnapshot(client_id=cid, snapshot_date=day, **row) for cid, row in values.items() if cid not in existing]
        # A row a concurrent run inserted meanwhile is overwritten with the same definition's values.
        target = {"unique_fields": ["client", "snapshot_date"]} if connection.features.supports_update_conflicts_with_target else {}
        SavingsSnapshot.objects.bulk_create(new, batch_size=500, update_conflicts=True,
                                            update_fields=[*SNAPSHOT_FIELDS, "updated_at"], **target)
        changed = []
        stamp = timezone.now()
        for cid, snap in existing.items():
            if any(getattr(snap, name) != value for name, value in values[cid].items()):
                for name, value in values[cid].items():
                    setattr(snap, name, value)
                snap.updated_at = stamp
                changed.append(snap)
        SavingsSnapshot.objects.bulk_update(changed, [*SNAPSHOT_FIELDS, "updated_at"], batch_size=500)
    return [*existing.values(), *new]


def savings_compute_day(*, client: Client, day: date, now: datetime | None = None) -> SavingsSnapshot:
    """Compute and upsert the (client, day) snapshot. Recomputing writes nothing when nothing changed."""
    _snapshots_write(day=day, days=[savings_day_calculate(client=client, day=day, now=now)])
    return SavingsSnapshot.objects.get(client=client, snapshot_date=day)


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
    """Recompute every day of [day_from, day_to] for the given clients (default: all). Each day is
    computed for all of them at once (savings_days_calculate) and written CLIENT_BATCH snapshots per
    transaction, so a long range holds no long lock and an interrupted run keeps what it finished."""
    now = now or timezone.now()
    ids = [c.pk for c in clients] if clients is not None else list(Client.objects.order_by("pk").values_list("pk", flat=True))
    days = [day_from + timedelta(days=n) for n in range((day_to - day_from).days + 1)]
    summary = RangeSummary(days=len(days), clients=len(ids))
    for n, day in enumerate(days, start=1):
        results = savings_days_calculate(day=day, client_ids=None if clients is None else ids, now=now)
        for part in chunks(ids, CLIENT_BATCH):
            rows = _snapshots_write(day=day, days=[results.get(cid) or DaySavings(client_id=cid, day=day) for cid in part])
            summary.snapshots += len(rows)
            summary.total_savings += sum((r.total_savings for r in rows), ZERO)
        if progress:
            progress(n, len(days), day)
    return summary


def savings_daily_run(*, now: datetime | None = None) -> RangeSummary:
    """The scheduled job: yesterday (final) and today so far, for every client."""
    now = now or timezone.now()
    today = now.astimezone(dt_tz.utc).date()
    return savings_compute_range(day_from=today - timedelta(days=1), day_to=today, now=now)
