"""Price lines: a price that changes at sample times, and the bulk reads that build them.

The reads seek with the (key..., observed_at) indexes: the latest sample at or before a moment is found
per key with one grouped MAX in a derived table (MariaDB answers it with a loose index scan) joined back
on the unique key; never one query per key and never a sort of a key's whole history. One statement
returns the opening samples and the period's samples together.
"""
from bisect import bisect_right
from collections import defaultdict
from datetime import datetime, timezone as dt_tz
from decimal import Decimal
from typing import Iterable

from django.db import connection
from django.db.models import Max, Min
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from agents.models import SpotPriceSample

CHUNK = 500  # keys per statement: keeps the SQL text and each result small


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


def chunks(items: list, size: int = CHUNK):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _aware(value) -> datetime:
    if isinstance(value, str):  # SQLite (development)
        value = parse_datetime(value)
    return value if timezone.is_aware(value) else timezone.make_aware(value, dt_tz.utc)


def _columns(model, key_fields: list[str]) -> list[str]:
    return [model._meta.get_field(f).column for f in key_fields]


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
    return f"SELECT {select}, s.{q('observed_at')}, s.{q('price')} FROM {table} s INNER JOIN ({sql}) g ON {on}", list(params)


def sample_points(
    *, qs, key_fields: list[str], start: datetime | None, end: datetime | None = None, edge: str = "latest"
) -> dict[tuple, list[tuple[datetime, Decimal]]]:
    """Per key (tuple of `key_fields` values) of `qs`, already narrowed to the wanted keys:
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
        sql, params = f"{sql} UNION ALL {period_sql}", params + list(period_params)
    n = len(key_fields)
    points: dict[tuple, list] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for row in cursor.fetchall():
            price = row[n + 1] if isinstance(row[n + 1], Decimal) else Decimal(str(row[n + 1]))
            points[tuple(row[:n])].append((_aware(row[n]), price))
    return points


def spot_lines(*, pool_ids: Iterable[str], start: datetime, end: datetime) -> dict[str, PriceLine]:
    """Every pool's price line over [start, end): the sample in effect at `start` plus the samples in
    (start, end). One statement per CHUNK pools; callers pass a bounded number of pools so memory stays
    flat whatever the history kept."""
    lines = {}
    for part in chunks(sorted(set(pool_ids))):
        qs = SpotPriceSample.objects.filter(pool_id__in=part)
        for (pool_id,), pts in sample_points(qs=qs, key_fields=["pool_id"], start=start, end=end).items():
            lines[pool_id] = PriceLine(pts)
    return lines
