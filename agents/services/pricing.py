"""Market prices: the agents' pricing reports are the server's only source (docs/API.md §1.7)."""
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from agents.locks import agent_lock
from agents.models import Agent, SpotPool, SpotPriceSample
from agents.services.market import ondemand_ceiling, quote_problem, sample_time
from agents.services.pools import pool_parse_id, region_of_az
from agents.services.price_writes import PriceFacts, price_facts_store, with_deadlock_retry

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


def pool_price_at(*, pool_id: str, at: datetime) -> Decimal | None:
    """The spot price in effect at `at`: the latest sample at or before it."""
    rows = (
        SpotPriceSample.objects.filter(pool_id=pool_id, observed_at__lte=at)
        .order_by("-observed_at")
        .values_list("price", flat=True)[:1]
    )
    return rows[0] if rows else None


def pricing_report_record(*, agent: Agent, report: PricingReport) -> dict:
    """Check the quotes, store the report's prices (agents/services/price_writes.py: samples once each, a resent report adds nothing; latest prices only move forward) and, for
    v3.2.0 agents, the agent's mode.

    Quotes are checked first and sample times clamped to the server clock (agents/services/market.py):
    other clients' decisions read these pools. Agents in one region report the same pools in any order,
    thousands a minute, so nothing here may deadlock: prices are written with every lock in pool-id
    order (price_writes), and the agent's mode, when it changed, in its own transaction (agent row first)."""
    now = timezone.now()
    observed_at = sample_time(reported=report.collected_at, now=now)
    region = report.region or region_of_az(report.az) or agent.region
    quotes, ignored = pricing_quotes_check(report=report, region=region)
    pool_ids = sorted(quotes)

    ondemand = None
    if report.on_demand_price is not None and report.instance_type and region:
        ondemand = (report.instance_type, region, report.on_demand_price, report.on_demand_is_fallback)
    price_facts_store(PriceFacts(at=observed_at, region=region, spot=[(pid, quotes[pid].price) for pid in pool_ids],
                                 ondemand=ondemand))

    if report.instance_id and report.instance_id != agent.instance_id:
        from agents.services.instances import instance_is_known, instance_unknown_log

        if not instance_is_known(agent=agent, instance_id=report.instance_id):
            # The market prices above are facts whoever saw them; the phantom itself is only logged.
            instance_unknown_log(agent=agent, instance_id=report.instance_id, source="pricing report")
    # v3.2.0 agents tell their mode only here; a report from a non-primary instance changes nothing.
    if report.instance_id and report.instance_id == agent.instance_id and report.mode in ("spot", "ondemand"):
        # The agent's own pool is its own fact, even when its quote was dropped as implausible.
        own_pool = report.pool_id in quotes or any(
            i["pool_id"] == report.pool_id and i["reason"].startswith("price:") for i in ignored)
        pool_id = report.pool_id if report.mode == "spot" and own_pool else None
        if agent.current_mode != report.mode or agent.current_pool_id != pool_id:
            with_deadlock_retry(lambda: _agent_mode_record(agent=agent, mode=report.mode, pool_id=pool_id))
    return {"pools": len(quotes), "observed_at": observed_at, "ignored": ignored}


def pricing_quotes_check(*, report: PricingReport, region: str) -> tuple[dict[str, PoolQuote], list[dict]]:
    """The quotes kept, by pool id, and those dropped with the reason (agents/services/market.py): other
    clients' decisions read these pools, so a quote must name a real AZ of the instance's region at a
    plausible price. Dropping one bad quote keeps the rest of an honest report."""
    ceilings: dict[str, Decimal | None] = {}  # per instance type: the report's on-demand quote is its own type's
    quotes, ignored = {}, []
    for q in report.spot_pools:
        parsed = pool_parse_id(q.pool_id)
        if parsed is None:
            ignored.append({"pool_id": q.pool_id, "reason": "pool_id: not '<instance type>.<availability zone>'"})
            continue
        own_type = parsed[0] == report.instance_type
        if parsed[0] not in ceilings:
            ceilings[parsed[0]] = ondemand_ceiling(
                instance_type=parsed[0], region=region, reported=report.on_demand_price if own_type else None,
                reported_is_fallback=report.on_demand_is_fallback)
        problem = quote_problem(az=parsed[1], region=region, price=q.price,
                                ceiling=ceilings[parsed[0]])
        if not problem and q.az and q.az != parsed[1]:
            problem = f"az: '{q.az}' is not the pool's availability zone '{parsed[1]}'"
        if problem:
            ignored.append({"pool_id": q.pool_id, "reason": problem})
        else:
            quotes[q.pool_id] = q
    return quotes, ignored


def _agent_mode_record(*, agent: Agent, mode: str, pool_id: str | None) -> None:
    """Only an existing pool is recorded (a kept quote's pool exists: the prices were stored first)."""
    with transaction.atomic():
        locked = agent_lock(agent_id=agent.pk)
        if locked.instance_id != agent.instance_id:
            return  # the agent moved to another instance meanwhile: this report is stale
        fields = []
        if locked.current_mode != mode:
            locked.current_mode = mode
            fields.append("current_mode")
        if locked.current_pool_id != pool_id:
            if pool_id is None or SpotPool.objects.filter(pk=pool_id).exists():
                locked.current_pool_id = pool_id
                fields.append("current_pool")
        if fields:
            locked.save(update_fields=fields + ["updated_at"])
            locked.instances.filter(instance_id=locked.instance_id).update(
                mode=locked.current_mode, pool_id=locked.current_pool_id
            )
        for name in ("current_mode", "current_pool_id", "updated_at"):
            setattr(agent, name, getattr(locked, name))


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
