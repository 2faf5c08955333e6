"""Spot pools and the one pool choice used by every path (ARCHITECTURE.md §4)."""
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from agents.models import RiskRecommendation, SpotPool
from agents.services import market

# Rank order of the risk buckets; a pool never analysed sits between safe and caution.
RISK_BUCKET = {RiskRecommendation.SAFE: 0, "": 1, RiskRecommendation.CAUTION: 2, RiskRecommendation.AVOID: 3}


def pool_id_for(*, instance_type: str, az: str) -> str:
    return f"{instance_type}.{az}"


def region_of_az(az: str) -> str:
    """'us-east-1b' -> 'us-east-1' (an AZ is its region plus one letter, or a local-zone suffix)."""
    if not az or az == "unknown":
        return ""
    parts = az.split("-")
    if len(parts) >= 3 and parts[2] and parts[2][-1].isalpha() and parts[2][:-1].isdigit():
        return "-".join(parts[:2] + [parts[2][:-1]])
    return az.rstrip("abcdefghijklmnopqrstuvwxyz")


def pool_parse_id(pool_id: str) -> tuple[str, str] | None:
    """'t3.medium.us-east-1b' -> ('t3.medium', 'us-east-1b'): the AZ follows the last dot."""
    if not pool_id or "." not in pool_id:
        return None
    instance_type, _, az = pool_id.rpartition(".")
    if not instance_type or not az:
        return None
    return instance_type, az


def pool_get_or_create(*, pool_id: str, instance_type: str = "", az: str = "") -> SpotPool | None:
    parsed = pool_parse_id(pool_id)
    if parsed is None:
        return None
    instance_type = instance_type or parsed[0]
    az = az or parsed[1]
    pool, _ = SpotPool.objects.get_or_create(
        pk=pool_id, defaults={"instance_type": instance_type, "az": az, "region": region_of_az(az)}
    )
    return pool


@dataclass(frozen=True)
class PoolChoice:
    pool: SpotPool | None  # None: no spot pool qualifies, go on-demand
    reason: str

    @property
    def target_mode(self) -> str:
        return "spot" if self.pool is not None else "ondemand"


def _rank(pool: SpotPool) -> tuple:
    return (RISK_BUCKET.get(pool.risk_recommendation, 1), pool.latest_price, pool.pk)


def pool_select(
    *,
    instance_type: str,
    region: str,
    exclude_pool_ids: tuple[str, ...] = (),
    max_risk_of: SpotPool | None = None,
    now=None,
    client_id=None,
) -> PoolChoice:
    """Best spot pool of this type and region for this client: recent price, not cooling down, not
    `avoid`, not excluded, never riskier than `max_risk_of`; ranked by risk bucket, then price.
    Cooldown and risk weigh the client's own interruption signals and other clients' only when several
    agree (market.py); client_id None: only the agreed ones. Two indexed queries."""
    now = now or timezone.now()
    if not instance_type or not region:
        return PoolChoice(None, "instance type or region unknown: on-demand")
    fresh_after = now - timedelta(seconds=settings.PRICE_FRESHNESS_SECONDS)
    candidates = list(
        SpotPool.objects.filter(instance_type=instance_type, region=region, latest_price_at__gte=fresh_after)
        .exclude(pk__in=list(exclude_pool_ids))
        .exclude(latest_price__isnull=True)
    )
    ids = [p.pk for p in candidates] + ([max_risk_of.pk] if max_risk_of is not None else [])
    signals = market.pool_signals(client_id=client_id, pool_ids=ids, now=now)
    cooling, own = signals.cooling, signals.own
    for p in candidates:  # the recommendation as this client's decisions see it (not saved)
        if p.pk in own:
            p.risk_recommendation = market.worse_recommendation(p.risk_recommendation, own[p.pk])
    candidates = [p for p in candidates if p.pk not in cooling and p.risk_recommendation != RiskRecommendation.AVOID]
    ranked = sorted(candidates, key=_rank)
    if max_risk_of is not None:
        worst = max_risk_of.risk_recommendation
        if max_risk_of.pk in own:
            worst = market.worse_recommendation(worst, own[max_risk_of.pk])
        ceiling = RISK_BUCKET.get(worst, 1)
        ranked = [p for p in ranked if RISK_BUCKET.get(p.risk_recommendation, 1) <= ceiling]
    if not ranked:
        return PoolChoice(None, f"no fresh, safe spot pool for {instance_type} in {region}: on-demand")
    best = ranked[0]
    risk = best.risk_recommendation or "unrated"
    return PoolChoice(best, f"lowest risk ({risk}) then cheapest ({Decimal(best.latest_price).normalize()} USD/h)")
