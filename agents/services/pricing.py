"""Market prices: the agents' pricing reports are the server's only source (docs/API.md §1.7)."""
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from agents.locks import agent_lock
from agents.models import Agent, OnDemandPriceSample, SpotPool, SpotPriceSample
from agents.services.market import ondemand_ceiling, quote_problem, sample_time
from agents.services.pools import pool_parse_id, region_of_az

V4_FALLBACK_ONDEMAND = Decimal("0.1")
RETRY_ERRORS = (1213, 1205)  # MySQL/MariaDB: deadlock found; lock wait timeout exceeded
RETRIES = 3


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


def _deadlock_retry(fn):
    """Run `fn` (one short transaction) again on a deadlock or lock-wait timeout. A safety net only:
    the statements below take their locks in one global order, so the cycle cannot form."""
    if connection.in_atomic_block:  # inside the caller's transaction a retry cannot help
        return fn()
    for attempt in range(RETRIES):
        try:
            return fn()
        except OperationalError as e:
            if e.args[0] not in RETRY_ERRORS or attempt == RETRIES - 1:
                raise
            time.sleep(0.01 * (attempt + 1))


def pricing_report_record(*, agent: Agent, report: PricingReport) -> dict:
    """Upsert the pools, store samples once each (a resent report adds nothing), refresh latest prices.

    Agents in one region report the same pools in any order, thousands a minute, so this must not
    deadlock (docs/PERFORMANCE.md, "Background jobs"). Every lock is taken in pool-id order, in short
    steps that never hold one row while waiting for another row in the wrong order:
    1. unknown pools: one INSERT IGNORE, pool-id order;
    2. one short transaction appends the samples (INSERT IGNORE, pool-id order: the foreign-key checks
       take shared locks on the pool rows in that order) and the on-demand quote;
    3. each pool's latest price moves forward with one conditional single-row UPDATE, pool-id order,
       each its own statement: a statement locking one row while holding none cannot close a cycle;
    4. the agent's mode, when it changed, in its own transaction (agent row locked first).
    Quotes are checked first and sample times clamped to the server clock (agents/services/market.py):
    other clients' decisions read these pools."""
    now = timezone.now()
    observed_at = sample_time(reported=report.collected_at, now=now)
    region = report.region or region_of_az(report.az) or agent.region
    quotes, ignored = pricing_quotes_check(report=report, region=region)
    pool_ids = sorted(quotes)

    if quotes:
        existing = set(SpotPool.objects.filter(pk__in=pool_ids).values_list("pk", flat=True))
        new_pools = []
        for pid in pool_ids:
            if pid not in existing:
                # Type and AZ from the id alone: a quote's own fields cannot file a pool under another type.
                instance_type, az = pool_parse_id(pid)
                new_pools.append(SpotPool(id=pid, instance_type=instance_type, az=az, region=region_of_az(az) or region))
        SpotPool.objects.bulk_create(new_pools, ignore_conflicts=True)

    def append_samples():
        with transaction.atomic():
            SpotPriceSample.objects.bulk_create(
                [SpotPriceSample(pool_id=pid, price=quotes[pid].price, observed_at=observed_at) for pid in pool_ids],
                ignore_conflicts=True,
            )
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

    _deadlock_retry(append_samples)
    _latest_prices_move(quotes=quotes, pool_ids=pool_ids, observed_at=observed_at)

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
            _deadlock_retry(lambda: _agent_mode_record(agent=agent, mode=report.mode, pool_id=pool_id))
    return {"pools": len(quotes), "observed_at": observed_at, "ignored": ignored}


def _latest_prices_move(*, quotes: dict, pool_ids: list[str], observed_at: datetime) -> None:
    """Only move a pool's latest price forward in time (reports can arrive late or twice): one
    single-row statement per pool, in pool-id order, each committed on its own (no row waits for
    another). Plain SQL compiled once: the ORM built the same statement per pool at ~0.3 ms each."""
    ops = connection.ops
    table, qn = SpotPool._meta.db_table, ops.quote_name
    at = ops.adapt_datetimefield_value(observed_at)
    sql = (f"UPDATE {qn(table)} SET {qn('latest_price')} = %s, {qn('latest_price_at')} = %s "
           f"WHERE {qn('id')} = %s AND ({qn('latest_price_at')} IS NULL OR {qn('latest_price_at')} <= %s)")
    rows = [(ops.adapt_decimalfield_value(quotes[pid].price, 12, 6), at, pid, at) for pid in pool_ids]
    if rows:
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)


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
