"""Pool risk (ARCHITECTURE.md §5): a score in [0, 1] per spot pool every 15 minutes.

score = 0.3 x volatility + 0.2 x price pressure + 0.5 x interruptions, each component in [0, 1]:
- volatility: coefficient of variation of the pool's spot samples over 24 h, full at CV 0.2;
- price pressure: spot / on-demand, none up to 0.3, full at 1.0 (spot near on-demand = scarce capacity);
- interruptions: termination notices (weight 1) and rebalance recommendations (weight 0.5) seen in the
  pool over 24 h, full at 2.
Recommendation: `safe` below 0.3, `caution` below 0.6, `avoid` from 0.6; a pool with a rebalance
recommendation in the window is at least `caution` (REBALANCE_FLOOR: this analysis is the only writer
of the verdict; the rebalance handler only records its signal). The latest score and
recommendation are copied onto the pool row, which the failover choice (pool_policy.pool_select) reads.
"""
import statistics
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from agents.models import (
    PoolRiskAnalysis,
    RiskRecommendation,
    Severity,
    SpotPool,
    SpotPriceSample,
    SystemEvent,
    TerminationEvent,
    TerminationEventType,
)
from agents.services.pricing import ondemand_price_get
from notifications.services import notification_enqueue

WINDOW = timedelta(hours=24)
SLOT_MINUTES = 15
WEIGHTS = {"volatility": 0.3, "price_pressure": 0.2, "interruptions": 0.5}
VOLATILITY_FULL = 0.2
PRICE_RATIO_FLOOR, PRICE_RATIO_FULL = 0.3, 1.0
INTERRUPTIONS_FULL = 2.0
REBALANCE_WEIGHT = 0.5
CAUTION_FROM, AVOID_FROM = 0.3, 0.6
# AWS's rebalance recommendation says the pool's interruption risk is elevated: never `safe` then.
REBALANCE_FLOOR = RiskRecommendation.CAUTION
ANALYSIS_FIELDS = ["risk_score", "volatility", "avg_price_24h", "min_price_24h", "max_price_24h",
                   "interruption_frequency", "recommendation", "metadata"]


def _clamp(x: float) -> float:
    return max(0.0, min(1.0, x))


def risk_slot(now: datetime) -> datetime:
    """The 15-minute slot a run belongs to: two runs in one slot write the same rows (idempotent)."""
    return now.replace(minute=now.minute - now.minute % SLOT_MINUTES, second=0, microsecond=0)


def risk_recommendation_for(score: float) -> str:
    if score >= AVOID_FROM:
        return RiskRecommendation.AVOID
    if score >= CAUTION_FROM:
        return RiskRecommendation.CAUTION
    return RiskRecommendation.SAFE


def risk_score_compute(
    *, prices: list[Decimal], latest_price: Decimal | None, ondemand_price: Decimal | None,
    notices: int, rebalances: int,
) -> dict:
    """The score and its inputs for one pool (pure: unit-tested by hand)."""
    floats = [float(p) for p in prices]
    mean = statistics.fmean(floats) if floats else 0.0
    cv = statistics.pstdev(floats) / mean if len(floats) > 1 and mean > 0 else 0.0
    ratio = float(latest_price) / float(ondemand_price) if latest_price is not None and ondemand_price else None
    frequency = notices + REBALANCE_WEIGHT * rebalances
    components = {
        "volatility": _clamp(cv / VOLATILITY_FULL),
        "price_pressure": _clamp((ratio - PRICE_RATIO_FLOOR) / (PRICE_RATIO_FULL - PRICE_RATIO_FLOOR)) if ratio is not None else 0.0,
        "interruptions": _clamp(frequency / INTERRUPTIONS_FULL),
    }
    score = round(_clamp(sum(WEIGHTS[k] * v for k, v in components.items())), 4)
    recommendation = risk_recommendation_for(score)
    if rebalances and recommendation == RiskRecommendation.SAFE:
        recommendation = REBALANCE_FLOOR
    return {
        "score": score,
        "recommendation": recommendation,
        "volatility": round(cv, 6),
        "interruption_frequency": frequency,
        "avg": (sum(prices) / len(prices)).quantize(Decimal("0.000001")) if prices else None,
        "min": min(prices) if prices else None,
        "max": max(prices) if prices else None,
        "metadata": {
            "window_hours": WINDOW.total_seconds() / 3600,
            "samples": len(prices),
            "latest_price": str(latest_price) if latest_price is not None else None,
            "ondemand_price": str(ondemand_price) if ondemand_price is not None else None,
            "price_ratio": round(ratio, 6) if ratio is not None else None,
            "termination_notices": notices,
            "rebalance_recommendations": rebalances,
            "components": {k: round(v, 6) for k, v in components.items()},
            "weights": WEIGHTS,
        },
    }


def _avoid_alert_text(pool: SpotPool, result: dict) -> str:
    m = result["metadata"]
    return (
        f":warning: Spot pool {pool.pk} is now rated AVOID (risk {result['score']:.2f}): "
        f"{m['termination_notices']} termination notice(s), {m['rebalance_recommendations']} rebalance "
        f"recommendation(s) in 24 h, price volatility {result['volatility']:.3f}. Failover will skip it."
    )


def pool_risk_analyze_all(*, now: datetime | None = None) -> dict:
    """Analyse every pool: one pool_risk_analysis row per pool and slot (a rerun updates it), the pool
    row's risk fields refreshed, and one alert (system event + outbox notification) per entry into avoid.
    A fixed number of queries plus one on-demand lookup per (instance type, region)."""
    now = now or timezone.now()
    slot = risk_slot(now)
    since = now - WINDOW
    with transaction.atomic():
        # Locking the pools makes an overlapping run wait, so an entry into avoid is alerted once.
        pools = list(SpotPool.objects.select_for_update().order_by("pk"))
        if not pools:
            return {"analyzed": 0, "avoid": 0, "entered_avoid": []}
        prices: dict[str, list[Decimal]] = defaultdict(list)
        for pool_id, price in SpotPriceSample.objects.filter(observed_at__gt=since, observed_at__lte=now).values_list(
            "pool_id", "price"
        ):
            prices[pool_id].append(price)
        events: dict[tuple[str, str], int] = {
            (r["pool_id"], r["event_type"]): r["n"]
            for r in TerminationEvent.objects.filter(pool__isnull=False, detected_at__gt=since, detected_at__lte=now)
            .values("pool_id", "event_type")
            .annotate(n=Count("id"))
        }
        ondemand = {
            key: ondemand_price_get(instance_type=key[0], region=key[1])
            for key in {(p.instance_type, p.region) for p in pools}
        }
        existing = {a.pool_id: a for a in PoolRiskAnalysis.objects.filter(analyzed_at=slot)}
        new_rows, changed_rows, changed_pools, alerts = [], [], [], []
        for pool in pools:
            r = risk_score_compute(
                prices=prices.get(pool.pk, []),
                latest_price=pool.latest_price,
                ondemand_price=ondemand.get((pool.instance_type, pool.region)),
                notices=events.get((pool.pk, TerminationEventType.TERMINATION_NOTICE), 0),
                rebalances=events.get((pool.pk, TerminationEventType.REBALANCE_RECOMMENDATION), 0),
            )
            values = {
                "risk_score": Decimal(str(r["score"])).quantize(Decimal("0.0001")),
                "volatility": Decimal(str(r["volatility"])).quantize(Decimal("0.000001")),
                "avg_price_24h": r["avg"],
                "min_price_24h": r["min"],
                "max_price_24h": r["max"],
                "interruption_frequency": Decimal(str(r["interruption_frequency"])).quantize(Decimal("0.0001")),
                "recommendation": r["recommendation"],
                "metadata": r["metadata"],
            }
            row = existing.get(pool.pk)
            if row is None:
                new_rows.append(PoolRiskAnalysis(pool=pool, analyzed_at=slot, **values))
            elif any(getattr(row, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(row, k, v)
                changed_rows.append(row)
            entered_avoid = (
                r["recommendation"] == RiskRecommendation.AVOID and pool.risk_recommendation != RiskRecommendation.AVOID
            )
            if pool.risk_score != values["risk_score"] or pool.risk_recommendation != r["recommendation"]:
                pool.risk_score = values["risk_score"]
                pool.risk_recommendation = r["recommendation"]
                changed_pools.append(pool)
            if entered_avoid:
                alerts.append((pool, r))
        PoolRiskAnalysis.objects.bulk_create(new_rows)
        PoolRiskAnalysis.objects.bulk_update(changed_rows, ANALYSIS_FIELDS)
        SpotPool.objects.bulk_update(changed_pools, ["risk_score", "risk_recommendation"])
        SystemEvent.objects.bulk_create(
            [
                SystemEvent(
                    event_type="pool_risk_avoid",
                    severity=Severity.WARNING,
                    message=_avoid_alert_text(pool, r),
                    metadata={"pool_id": pool.pk, "risk_score": r["score"], **r["metadata"]},
                )
                for pool, r in alerts
            ]
        )
        for pool, r in alerts:
            notification_enqueue(kind="pool_risk_avoid", text=_avoid_alert_text(pool, r), metadata={"pool_id": pool.pk})
    return {
        "analyzed": len(pools),
        "avoid": sum(1 for p in pools if p.risk_recommendation == RiskRecommendation.AVOID),
        "entered_avoid": [p.pk for p, _ in alerts],
    }
