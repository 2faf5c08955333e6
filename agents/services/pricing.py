"""Market prices: the agents' pricing reports are the server's only source (API.md §1.7)."""
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from agents.models import Agent, OnDemandPriceSample, SpotPool, SpotPriceSample
from agents.services.pools import pool_parse_id, region_of_az

V4_FALLBACK_ONDEMAND = Decimal("0.1")


@dataclass
class PoolQuote:
    pool_id: str
    instance_type: str
    az: str
    price: Decimal


@dataclass
class PricingReport:
    """Both report shapes (v4 and v3.2.0) normalised."""

    instance_id: str = ""
    instance_type: str = ""
    region: str = ""
    az: str = ""
    mode: str = ""
    pool_id: str = ""
    on_demand_price: Decimal | None = None
    on_demand_is_fallback: bool = False
    spot_pools: list[PoolQuote] = field(default_factory=list)
    collected_at: datetime | None = None


def ondemand_price_get(*, instance_type: str, region: str) -> Decimal | None:
    """Latest real on-demand quote for this type and region; the agent's fallback only if none."""
    rows = (
        OnDemandPriceSample.objects.filter(instance_type=instance_type, region=region)
        .order_by("is_fallback", "-observed_at")
        .values_list("price", flat=True)[:1]
    )
    return rows[0] if rows else None


def pool_price_at(*, pool_id: str, at: datetime) -> Decimal | None:
    """The spot price in effect at `at`: the latest sample at or before it."""
    rows = (
        SpotPriceSample.objects.filter(pool_id=pool_id, observed_at__lte=at)
        .order_by("-observed_at")
        .values_list("price", flat=True)[:1]
    )
    return rows[0] if rows else None


@transaction.atomic
def pricing_report_record(*, agent: Agent, report: PricingReport) -> dict:
    """Upsert the pools, store samples once each (a resent report adds nothing), refresh latest prices."""
    now = timezone.now()
    observed_at = report.collected_at or now
    quotes = {q.pool_id: q for q in report.spot_pools if pool_parse_id(q.pool_id)}
    region = report.region or region_of_az(report.az)

    if quotes:
        existing = SpotPool.objects.in_bulk(list(quotes))
        new_pools = [
            SpotPool(
                id=q.pool_id,
                instance_type=q.instance_type or pool_parse_id(q.pool_id)[0],
                az=q.az or pool_parse_id(q.pool_id)[1],
                region=region_of_az(q.az or pool_parse_id(q.pool_id)[1]) or region,
            )
            for pid, q in quotes.items()
            if pid not in existing
        ]
        SpotPool.objects.bulk_create(new_pools, ignore_conflicts=True)
        SpotPriceSample.objects.bulk_create(
            [SpotPriceSample(pool_id=pid, price=q.price, observed_at=observed_at) for pid, q in quotes.items()],
            ignore_conflicts=True,
        )
        # Only move a pool's latest price forward in time (reports can arrive late or twice).
        pools = list(SpotPool.objects.filter(pk__in=list(quotes)))
        changed = []
        for pool in pools:
            if pool.latest_price_at is None or pool.latest_price_at <= observed_at:
                pool.latest_price = quotes[pool.pk].price
                pool.latest_price_at = observed_at
                changed.append(pool)
        SpotPool.objects.bulk_update(changed, ["latest_price", "latest_price_at"])

    if report.on_demand_price is not None and report.instance_type and region:
        OnDemandPriceSample.objects.bulk_create(
            [
                OnDemandPriceSample(
                    instance_type=report.instance_type,
                    region=region,
                    price=report.on_demand_price,
                    is_fallback=report.on_demand_is_fallback,
                    observed_at=observed_at,
                )
            ],
            ignore_conflicts=True,
        )

    if report.instance_id and report.instance_id != agent.instance_id:
        from agents.services.instances import instance_is_known, instance_unknown_log

        if not instance_is_known(agent=agent, instance_id=report.instance_id):
            # The market prices above are facts whoever saw them; the phantom itself is only logged.
            instance_unknown_log(agent=agent, instance_id=report.instance_id, source="pricing report")
    # v3.2.0 agents tell their mode only here; a report from a non-primary instance changes nothing.
    if report.instance_id and report.instance_id == agent.instance_id:
        fields = []
        if report.mode in ("spot", "ondemand") and agent.current_mode != report.mode:
            agent.current_mode = report.mode
            fields.append("current_mode")
        pool_id = report.pool_id if report.mode == "spot" and report.pool_id in quotes else None
        if report.mode == "ondemand":
            pool_id = None
        if report.mode in ("spot", "ondemand") and agent.current_pool_id != pool_id:
            if pool_id is None or SpotPool.objects.filter(pk=pool_id).exists():
                agent.current_pool_id = pool_id
                fields.append("current_pool")
        if fields:
            agent.save(update_fields=fields + ["updated_at"])
            agent.instances.filter(instance_id=agent.instance_id).update(
                mode=agent.current_mode, pool_id=agent.current_pool_id
            )
    return {"pools": len(quotes), "observed_at": observed_at}


def pricing_is_fallback(*, on_demand: Decimal | None, spot_prices: list[Decimal], v3: bool) -> bool:
    """The agent's stand-ins when AWS's Pricing API fails: v4 sends exactly 0.1, v3 3 x mean spot."""
    if on_demand is None:
        return False
    if not v3:
        return on_demand == V4_FALLBACK_ONDEMAND
    if not spot_prices:
        return False
    mean = sum(spot_prices) / len(spot_prices)
    return abs(on_demand - 3 * mean) < Decimal("0.000002")
