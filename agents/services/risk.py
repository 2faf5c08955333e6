"""Pool risk (docs/ARCHITECTURE.md §5): a score in [0, 1] per spot pool every 15 minutes.

score = 0.3 x volatility + 0.2 x price pressure + 0.5 x interruptions, each component in [0, 1]:
- volatility: coefficient of variation of the pool's spot samples over 24 h, full at CV 0.2;
- price pressure: spot / on-demand, none up to 0.3, full at 1.0 (spot near on-demand = scarce capacity);
- interruptions: termination notices (weight 1) and rebalance recommendations (weight 0.5) seen in the
  pool over 24 h, full at 2; in this shared analysis only the signals at least MARKET_EVIDENCE_QUORUM
  clients agree on (agents/services/market.py), a client's own signals weigh in its own decisions.
Recommendation: `safe` below 0.3, `caution` below 0.6, `avoid` from 0.6; a pool with a rebalance
recommendation in the window is at least `caution` (REBALANCE_FLOOR: this analysis is the only writer
of the verdict; the rebalance handler only records its signal). The latest score and
recommendation are copied onto the pool row, which the failover choice (pool_policy.pool_select) reads.
"""
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, DecimalField, F, Max, Min, Sum
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
from agents.services.ondemand import ondemand_prices_get
from agents.services.price_lines import CHUNK, chunks
from notifications.http import slack_escape
from notifications.models import EventType
from notifications.services import notification_enqueue, webhook_events_emit

WINDOW = timedelta(hours=24)
# Rank order of the risk buckets; a pool never analysed sits between safe and caution.
RISK_BUCKET = {RiskRecommendation.SAFE: 0, "": 1, RiskRecommendation.CAUTION: 2, RiskRecommendation.AVOID: 3}


def worse_recommendation(a: str, b: str) -> str:
    return a if RISK_BUCKET.get(a, 1) >= RISK_BUCKET.get(b, 1) else b


def agreed_event_counts(*, since: datetime, now: datetime) -> dict[tuple[str, str], int]:
    """The shared risk analysis's inputs: per (pool, event type), the events of the window, counted
    only when at least MARKET_EVIDENCE_QUORUM distinct clients reported that type in that pool."""
    rows = (
        TerminationEvent.objects.filter(pool__isnull=False, detected_at__gt=since, detected_at__lte=now)
        .order_by().values("pool_id", "event_type")
        .annotate(n=Count("id"), clients=Count("client_id", distinct=True))
    )
    return {(r["pool_id"], r["event_type"]): r["n"] for r in rows if r["clients"] >= settings.MARKET_EVIDENCE_QUORUM}
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


@dataclass(frozen=True)
class PriceStats:
    """A pool's samples in the window, summed: the database adds them up, so no run holds 1.44 M
    samples in memory. The sums are exact decimals, so the statistics are those of the samples."""

    n: int = 0
    total: Decimal = Decimal(0)
    total_sq: Decimal = Decimal(0)
    low: Decimal | None = None
    high: Decimal | None = None

    @classmethod
    def of(cls, prices: list[Decimal]) -> "PriceStats":
        if not prices:
            return cls()
        return cls(len(prices), sum(prices, Decimal(0)), sum((p * p for p in prices), Decimal(0)), min(prices), max(prices))

    def mean(self) -> float:
        return float(Fraction(self.total) / self.n) if self.n else 0.0

    def pstdev(self) -> float:
        """Population standard deviation, from the exact variance (n·Σx² − (Σx)²) / n²."""
        total = Fraction(self.total)
        variance = (self.n * Fraction(self.total_sq) - total * total) / (self.n * self.n)
        return math.sqrt(max(variance, 0))


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
    *, prices: list[Decimal] | None = None, stats: PriceStats | None = None, latest_price: Decimal | None,
    ondemand_price: Decimal | None, notices: int, rebalances: int,
) -> dict:
    """The score and its inputs for one pool (pure: unit-tested by hand), from the window's prices or
    their sums (`stats`, what the batch run passes)."""
    stats = stats if stats is not None else PriceStats.of(prices or [])
    mean = stats.mean()
    cv = stats.pstdev() / mean if stats.n > 1 and mean > 0 else 0.0
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
        "avg": (stats.total / stats.n).quantize(Decimal("0.000001")) if stats.n else None,
        "min": stats.low,
        "max": stats.high,
        "metadata": {
            "window_hours": WINDOW.total_seconds() / 3600,
            "samples": stats.n,
            "latest_price": str(latest_price) if latest_price is not None else None,
            "ondemand_price": str(ondemand_price) if ondemand_price is not None else None,
            "price_ratio": round(ratio, 6) if ratio is not None else None,
            "termination_notices": notices,
            "rebalance_recommendations": rebalances,
            "components": {k: round(v, 6) for k, v in components.items()},
            "weights": WEIGHTS,
        },
    }


def _risk_alerts_emit(*, alerts: list) -> None:
    """Each pool newly rated AVOID, to the clients with an agent in it (their `pool.risk_alert` endpoints)."""
    from agents.models import Agent

    clients_by_pool: dict = {}
    for pool_id, client_id in Agent.objects.filter(current_pool_id__in=[pk for pk, _ in alerts]).values_list(
            "current_pool_id", "client_id").distinct():
        clients_by_pool.setdefault(pool_id, set()).add(client_id)
    items = []
    for pk, r in alerts:
        m = r["metadata"]
        data = {"pool_id": pk, "risk_score": round(float(r["score"]), 4), "recommendation": "avoid",
                "termination_notices_24h": m.get("termination_notices"),
                "rebalance_recommendations_24h": m.get("rebalance_recommendations"),
                "price_volatility": round(float(r["volatility"]), 4)}
        items += [(client_id, data) for client_id in sorted(clients_by_pool.get(pk, ()), key=str)]
    if items:
        webhook_events_emit(event_type=EventType.POOL_RISK_ALERT, items=items)


def _avoid_alert_text(pool_id: str, result: dict) -> str:
    m = result["metadata"]
    pool_id = slack_escape(pool_id)  # pool ids come from agents' reports
    return (
        f":warning: Spot pool {pool_id} is now rated AVOID (risk {result['score']:.2f}): "
        f"{m['termination_notices']} termination notice(s), {m['rebalance_recommendations']} rebalance "
        f"recommendation(s) in 24 h, price volatility {result['volatility']:.3f}. Failover will skip it."
    )


def _window_stats(*, pool_ids: list[str], since: datetime, now: datetime) -> dict[str, PriceStats]:
    """Every pool's sums over (since, now]: one grouped statement per CHUNK pools, each seeking the
    (pool, observed_at) index, so the cost follows the window, not the history kept."""
    stats = {}
    square = DecimalField(max_digits=40, decimal_places=12)
    for part in chunks(pool_ids):
        for row in (
            SpotPriceSample.objects.filter(pool_id__in=part, observed_at__gt=since, observed_at__lte=now)
            .order_by()
            .values("pool_id")
            .annotate(n=Count("id"), total=Sum("price"), total_sq=Sum(F("price") * F("price"), output_field=square),
                      low=Min("price"), high=Max("price"))
        ):
            stats[row["pool_id"]] = PriceStats(row["n"], Decimal(row["total"]), Decimal(row["total_sq"]), row["low"],
                                               row["high"])
    return stats


def _pools_risk_write(changes: list[tuple[str, Decimal, str]]) -> None:
    """Copy the new score and verdict onto the pool rows (already locked)."""
    SpotPool.objects.bulk_update(
        [SpotPool(pk=pool_id, risk_score=score, risk_recommendation=rec) for pool_id, score, rec in changes],
        ["risk_score", "risk_recommendation"], batch_size=CHUNK)


def pool_risk_analyze_all(*, now: datetime | None = None) -> dict:
    """Analyse every pool: one pool_risk_analysis row per pool and slot (a rerun updates it), the pool
    row's risk fields refreshed, and one alert (system event + outbox notification) per entry into avoid.
    Reads without locks (a fixed number of statements per 500 pools), then writes in one short
    transaction, so pricing reports never wait for the computation."""
    now = now or timezone.now()
    slot = risk_slot(now)
    since = now - WINDOW
    pools = list(SpotPool.objects.order_by("pk").only("id", "instance_type", "region", "latest_price"))
    if not pools:
        return {"analyzed": 0, "avoid": 0, "entered_avoid": []}
    stats = _window_stats(pool_ids=[p.pk for p in pools], since=since, now=now)
    # The shared verdict counts only signals several clients agree on; a client's own signals weigh in
    # its own decisions at choice time (market.own_risk_buckets), so no client can move another's.
    events = agreed_event_counts(since=since, now=now)
    ondemand = ondemand_prices_get(keys={(p.instance_type, p.region) for p in pools})
    computed = {}
    for pool in pools:
        r = risk_score_compute(
            stats=stats.get(pool.pk, PriceStats()),
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
        computed[pool.pk] = (r, values)

    with transaction.atomic():
        # Locking the pools (pool-id order, as every writer of pool rows) makes an overlapping run wait,
        # so an entry into avoid is alerted once; the lock is held only while writing.
        locked = {
            pk: (score, rec)
            for pk, score, rec in SpotPool.objects.select_for_update()
            .filter(pk__in=list(computed))
            .order_by("pk")
            .values_list("pk", "risk_score", "risk_recommendation")
        }
        # A rerun of the slot (an overlapping run, a retry) leaves rows whose values did not change alone.
        existing = {
            row[0]: row[1:]
            for row in PoolRiskAnalysis.objects.filter(analyzed_at=slot).values_list("pool_id", *ANALYSIS_FIELDS)
        }
        rows, changed_pools, alerts = [], [], []
        avoid = 0
        for pk, (old_score, old_rec) in locked.items():
            r, values = computed[pk]
            if existing.get(pk) != tuple(values[k] for k in ANALYSIS_FIELDS):
                rows.append(PoolRiskAnalysis(pool_id=pk, analyzed_at=slot, **values))
            if old_score != values["risk_score"] or old_rec != r["recommendation"]:
                changed_pools.append((pk, values["risk_score"], r["recommendation"]))
            if r["recommendation"] == RiskRecommendation.AVOID:
                avoid += 1
                if old_rec != RiskRecommendation.AVOID:
                    alerts.append((pk, r))
        # One row per pool and slot: inserted, or updated in place when a rerun computed other values
        # (the unique (pool, analyzed_at) key; MariaDB's upsert takes no target, SQLite's needs one).
        target = ["pool", "analyzed_at"] if connection.features.supports_update_conflicts_with_target else None
        PoolRiskAnalysis.objects.bulk_create(rows, batch_size=1000, update_conflicts=True, unique_fields=target,
                                             update_fields=ANALYSIS_FIELDS)
        _pools_risk_write(changed_pools)
        SystemEvent.objects.bulk_create(
            [
                SystemEvent(
                    event_type="pool_risk_avoid",
                    severity=Severity.WARNING,
                    message=_avoid_alert_text(pk, r),
                    metadata={"pool_id": pk, "risk_score": r["score"], **r["metadata"]},
                )
                for pk, r in alerts
            ]
        )
        for pk, r in alerts:
            notification_enqueue(kind="pool_risk_avoid", text=_avoid_alert_text(pk, r), metadata={"pool_id": pk})
        if alerts:
            _risk_alerts_emit(alerts=alerts)
    return {"analyzed": len(locked), "avoid": avoid, "entered_avoid": [pk for pk, _ in alerts]}
