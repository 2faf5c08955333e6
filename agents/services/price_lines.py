"""Price lines: a price that changes at sample times, and the bulk reads that build them.

The reads seek with the (key..., observed_at) indexes: the latest sample at or before a moment is found
per key with one grouped MAX in a derived table (MariaDB answers it with a loose index scan) joined back
on the unique key; never one query per key and never a sort of a key's whole history. One statement
returns the opening samples and the period's samples together.
"""
from bisect import bisect_right
from collections import defaultdict
from datetime import datetime, timedelta, timezone as dt_tz
from decimal import Decimal
from typing import Iterable

from django.db import connection
from django.db.models import Max, Min
from django.utils.dateparse import parse_datetime

from agents.models import SpotPriceSample

CHUNK = 500  # keys per statement: keeps the SQL text and each result small


EPOCH = datetime(1970, 1, 1, tzinfo=dt_tz.utc)
MICROSECOND = timedelta(microseconds=1)
PRICE_UNIT = 1_000_000  # prices have 6 decimal places (models.PRICE): integral prices in micro-USD
SIX_PLACES = Decimal("0.000001")


def micros(moment: datetime) -> int:
    """A moment as an exact integer (microseconds since the epoch)."""
    return (moment - EPOCH) // MICROSECOND


def price_of(units: int) -> Decimal:
    return (Decimal(units) / PRICE_UNIT).quantize(SIX_PLACES)


def units_of(price: Decimal) -> int:
    return int((Decimal(price) * PRICE_UNIT).to_integral_value())


class PriceLine:
    """A price that changes at sample times: the latest sample at or before a moment is in effect.
    Held as exact integers (microseconds, micro-USD): `integral` sums price x duration exactly, so a
    total never depends on the order in which intervals are added nor on where they are cut."""

    def __init__(self, points: Iterable[tuple[datetime, Decimal]] = (), before_first: bool = False):
        self._init(sorted((micros(t), units_of(p)) for t, p in points), before_first)

    @classmethod
    def of_units(cls, points: list[tuple[int, int]], before_first: bool = False) -> "PriceLine":
        line = cls.__new__(cls)
        line._init(sorted(points), before_first)
        return line

    def _init(self, pts: list[tuple[int, int]], before_first: bool) -> None:
        self._us = [t for t, _ in pts]
        self._units = [p for _, p in pts]
        # On-demand list prices are stable: before the first known quote, that quote applies.
        self.before_first = before_first
        self._cum = [0]  # _cum[i]: integral from the first sample to sample i
        for i in range(1, len(self._us)):
            self._cum.append(self._cum[-1] + self._units[i - 1] * (self._us[i] - self._us[i - 1]))

    def __bool__(self) -> bool:
        return bool(self._us)

    def at(self, moment: datetime) -> Decimal | None:
        i = bisect_right(self._us, micros(moment))
        if i == 0:
            return price_of(self._units[0]) if (self.before_first and self._units) else None
        return price_of(self._units[i - 1])

    def known_from(self) -> int | None:
        """From when (microseconds) a price is known; None: never."""
        if not self._us:
            return None
        return -(2**63) if self.before_first else self._us[0]

    def _primitive(self, t: int) -> int:
        i = bisect_right(self._us, t) - 1
        if i < 0:  # before the first sample: its price if before_first, else unknown (counts 0)
            return self._units[0] * (t - self._us[0]) if self.before_first else 0
        return self._cum[i] + self._units[i] * (t - self._us[i])

    def integral(self, a: int, b: int) -> int:
        """Σ price x duration over [a, b) (microseconds) in micro-USD x microseconds, exactly; the time
        before the first sample counts 0 unless before_first."""
        if not self._us or b <= a:
            return 0
        return self._primitive(b) - self._primitive(a)


EMPTY_LINE = PriceLine([])


def chunks(items: list, size: int = CHUNK):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _aware(value) -> datetime:
    if isinstance(value, str):  # SQLite (development)
        value = parse_datetime(value)
    return value.replace(tzinfo=dt_tz.utc) if value.tzinfo is None else value  # stored in UTC (USE_TZ)


def _columns(model, key_fields: list[str]) -> list[str]:
    return [model._meta.get_field(f).column for f in key_fields]


def _exact(alias: str) -> str:
    """Select list of a sample's time and price. On MariaDB/MySQL the server turns them into the exact
    integers PriceLine holds: parsing 1.44 M datetimes in the client library was most of a day's cost."""
    q = connection.ops.quote_name
    if connection.vendor == "mysql":
        return (f"TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {alias}.{q('observed_at')}), "
                f"CAST({alias}.{q('price')} * {PRICE_UNIT} AS SIGNED)")
    return f"{alias}.{q('observed_at')}, {alias}.{q('price')}"


def _edge_select(qs, key_fields: list[str], edge: str, time_filter: dict) -> tuple[str, list]:
    """SQL selecting, per key of `qs`, the sample at the edge (latest/earliest) of `time_filter`."""
    agg = Max if edge == "latest" else Min
    inner = qs.filter(**time_filter).order_by().values(*key_fields).annotate(edge_at=agg("observed_at"))
    sql, params = inner.query.sql_with_params()
    q = connection.ops.quote_name
    cols = _columns(qs.model, key_fields)
    on = " AND ".join([f"s.{q(c)} = g.{q(c)}" for c in cols] + [f"s.{q('observed_at')} = g.{q('edge_at')}"])
    select = ", ".join(f"s.{q(c)}" for c in cols)
    table = q(qs.model._meta.db_table)
    return f"SELECT {select}, {_exact('s')} FROM {table} s INNER JOIN ({sql}) g ON {on}", list(params)


def sample_points(
    *, qs, key_fields: list[str], start: datetime | None, end: datetime | None = None, edge: str = "latest"
) -> dict[tuple, list[tuple[int, int]]]:
    """Per key (tuple of `key_fields` values) of `qs`, already narrowed to the wanted keys, points
    (microseconds, micro-USD) for PriceLine.of_units:
    - edge="latest": the latest sample at or before `start` (None: the latest of all), plus, when `end`
      is given, every sample in (start, end);
    - edge="earliest": the first sample at or after `start`.
    One statement."""
    if start is None:
        time_filter = {}
    else:
        time_filter = {"observed_at__lte": start} if edge == "latest" else {"observed_at__gte": start}
    sql, params = _edge_select(qs, key_fields, edge, time_filter)
    if end is not None:
        period = qs.filter(observed_at__gt=start, observed_at__lt=end).order_by().values_list(*key_fields, "observed_at", "price")
        period_sql, period_params = period.query.sql_with_params()
        q = connection.ops.quote_name
        keys = ", ".join(f"p.{q(c)}" for c in _columns(qs.model, key_fields))
        sql = f"{sql} UNION ALL SELECT {keys}, {_exact('p')} FROM ({period_sql}) p"
        params += list(period_params)
    n = len(key_fields)
    points: dict[tuple, list] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if connection.vendor == "mysql":
        for row in rows:
            points[row[:n]].append((row[n], row[n + 1]))
    else:
        for row in rows:
            points[tuple(row[:n])].append((micros(_aware(row[n])), units_of(Decimal(str(row[n + 1])))))
    return points


def spot_lines(*, pool_ids: Iterable[str], start: datetime, end: datetime) -> dict[str, PriceLine]:
    """Every pool's price line over [start, end): the sample in effect at `start` plus the samples in
    (start, end). One statement per CHUNK pools; callers pass a bounded number of pools so memory stays
    flat whatever the history kept."""
    lines = {}
    for part in chunks(sorted(set(pool_ids))):
        qs = SpotPriceSample.objects.filter(pool_id__in=part)
        for (pool_id,), pts in sample_points(qs=qs, key_fields=["pool_id"], start=start, end=end).items():
            lines[pool_id] = PriceLine.of_units(pts)
    return lines
