"""Price history retention: spot samples older than SPOT_PRICE_RETENTION_DAYS and on-demand quotes older
than ONDEMAND_PRICE_RETENTION_DAYS are deleted by a daily job (spotbackend/schedule.py), in batches.

Kept whatever their age, because savings and risk still read them: per pool, the last spot sample at or
before the cutoff (the opening price of the first day after it), and per (type, region, real/fallback)
the last on-demand quote at or before the cutoff (so a type with a real quote keeps one and the
on-demand rule, agents/services/ondemand.py, gives the same answer). Days before the cutoff can no
longer be recomputed exactly; their savings snapshots stay as they are.
"""
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max, Q
from django.utils import timezone

from agents.models import OnDemandPriceSample, SpotPriceSample
from agents.services.ondemand import KEY_FIELDS as ONDEMAND_KEYS

BATCH = 5000
MIN_DAYS = 2  # pool risk reads the last 24 h: never prune closer than that


def _prune(*, model, key_fields: list[str], cutoff: datetime, batch: int) -> int:
    """Delete the samples older than `cutoff` except each key's last one at or before it; `batch` rows
    per statement (each its own short transaction), walking the observed_at index."""
    keep = {
        (*row[:-1], row[-1])
        for row in model.objects.filter(observed_at__lte=cutoff)
        .order_by()
        .values(*key_fields)
        .annotate(last=Max("observed_at"))
        .values_list(*key_fields, "last")
    }
    deleted = 0
    after = None
    while True:
        qs = model.objects.filter(observed_at__lt=cutoff)
        if after is not None:
            qs = qs.filter(Q(observed_at__gt=after[0]) | Q(observed_at=after[0], id__gt=after[1]))
        rows = list(qs.order_by("observed_at", "id").values_list("id", *key_fields, "observed_at")[:batch])
        if not rows:
            break
        ids = [row[0] for row in rows if tuple(row[1:]) not in keep]
        if ids:
            deleted += model.objects.filter(id__in=ids).delete()[0]
        after = (rows[-1][-1], rows[-1][0])
        if len(rows) < batch:
            break
    return deleted


def price_history_prune(*, now: datetime | None = None, batch: int = BATCH) -> dict:
    """Apply both retention settings (0 = keep forever); return how many rows each deleted."""
    now = now or timezone.now()
    result = {"spot_deleted": 0, "ondemand_deleted": 0}
    for name, model, key_fields, days in (
        ("spot_deleted", SpotPriceSample, ["pool_id"], settings.SPOT_PRICE_RETENTION_DAYS),
        ("ondemand_deleted", OnDemandPriceSample, ONDEMAND_KEYS, settings.ONDEMAND_PRICE_RETENTION_DAYS),
    ):
        if days > 0:
            cutoff = now - timedelta(days=max(days, MIN_DAYS))
            result[name] = _prune(model=model, key_fields=key_fields, cutoff=cutoff, batch=batch)
    return result
