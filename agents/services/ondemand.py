"""The one on-demand price rule. Every reader calls this module: the switch report (switches.py), the pool
risk score (risk.py), daily savings (savings/services.py) and the dashboard (clients/selectors.py).

The on-demand price of an instance type in a region is its latest *real* quote; the agents' own
stand-in (`is_fallback`, see pricing.pricing_is_fallback) counts only while the server has no real
quote for that type and region at all. Over a period (savings) the price in effect at a moment is the
latest quote of that class at or before it, and the first one when the period starts before any quote
(list prices hardly move).
"""
from datetime import datetime
from decimal import Decimal
from typing import Iterable

from agents.models import OnDemandPriceSample
from agents.services.price_lines import PriceLine, price_of, sample_points

Key = tuple[str, str]  # (instance_type, region)
KEY_FIELDS = ["instance_type", "region", "is_fallback"]
FEW_KEYS = 50


def _samples(keys: set[Key] | None):
    """The samples of a superset of `keys`. A few keys: narrowed so that MariaDB seeks (type, region,
    is_fallback, observed_at) ranges of the lookup index. Many keys: not narrowed (thousands of IN
    ranges cost more than one loose index scan over every key; callers keep only what they asked)."""
    qs = OnDemandPriceSample.objects.all()
    if keys is None or len(keys) > FEW_KEYS:
        return qs
    return qs.filter(
        instance_type__in=sorted({t for t, _ in keys}),
        region__in=sorted({r for _, r in keys}),
        is_fallback__in=[False, True],
    )


def _by_key(points: dict) -> dict[tuple, list]:
    return {(t, r, bool(fallback)): pts for (t, r, fallback), pts in points.items()}


def ondemand_prices_get(*, keys: Iterable[Key] | None = None, at: datetime | None = None) -> dict[Key, Decimal]:
    """The on-demand price of each key (None: every key with a quote) as of `at` (default: the latest
    quote). Keys without any quote are absent. One statement whatever the number of keys."""
    wanted = None if keys is None else set(keys)
    if wanted is not None and not wanted:
        return {}
    latest = _by_key(sample_points(qs=_samples(wanted), key_fields=KEY_FIELDS, start=at))
    prices: dict[Key, Decimal] = {}
    for fallback in (True, False):  # real quotes last: they overwrite the stand-in
        for (instance_type, region, is_fallback), pts in latest.items():
            if is_fallback == fallback:
                prices[(instance_type, region)] = price_of(pts[-1][1])
    return prices if wanted is None else {k: v for k, v in prices.items() if k in wanted}


def ondemand_price_get(*, instance_type: str, region: str) -> Decimal | None:
    """The on-demand price of one instance type in one region (None: no quote at all)."""
    return ondemand_prices_get(keys=[(instance_type, region)]).get((instance_type, region))


def ondemand_price_lines(*, keys: Iterable[Key], start: datetime, end: datetime) -> dict[Key, PriceLine]:
    """Each key's on-demand price line over [start, end), by the rule above. Keys without any quote are
    absent. One statement whatever the number of keys, a second when a key has no real quote before `end`."""
    wanted = set(keys)
    if not wanted:
        return {}
    points = _by_key(sample_points(qs=_samples(wanted), key_fields=KEY_FIELDS, start=start, end=end))
    missing = {k for k in wanted if not points.get((*k, False))}  # no real quote before `end`
    if missing:
        # A real quote after the period still beats the stand-in (and applies from the start).
        later = _by_key(sample_points(qs=_samples(missing), key_fields=KEY_FIELDS, start=end, edge="earliest"))
        for key, pts in later.items():
            if key[:2] in missing and not points.get(key):
                points[key] = pts
    lines = {}
    for instance_type, region in wanted:
        pts = points.get((instance_type, region, False)) or points.get((instance_type, region, True))
        if pts:
            lines[(instance_type, region)] = PriceLine.of_units(pts, before_first=True)
    return lines
