"""Storing market prices: the samples of a pricing report and each pool's latest price, written before
the report is answered, so the next call of any kind sees them (docs/ARCHITECTURE.md §8).

Samples are unique per (pool, time), so writing a report twice adds nothing. Locks are taken in
pool-id order, the latest prices in their own statement after the samples commit, so concurrent
writers cannot deadlock (agents/tests/test_pricing_concurrency.py)."""
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import OperationalError, connection, transaction
from django.db.models import OuterRef, Q, Subquery

from agents.models import OnDemandPriceSample, SpotPool, SpotPriceSample
from agents.services.pools import pools_ensure


RETRY_ERRORS = (1213, 1205)  # MySQL/MariaDB: deadlock found; lock wait timeout exceeded
RETRIES = 3


@dataclass
class PriceFacts:
    """What one pricing report adds to the market: kept quotes (pool id, price), one time for all,
    the region its new pools belong to, and the on-demand quote (type, region, price, is_fallback)."""

    at: datetime
    region: str
    spot: list[tuple[str, Decimal]]
    ondemand: tuple[str, str, Decimal, bool] | None = None


def with_deadlock_retry(fn):
    """Run `fn` (one short transaction) again on a deadlock or lock-wait timeout. A safety net only:
    every writer here takes its locks in one global order, so the cycle cannot form."""
    if connection.in_atomic_block:  # inside the caller's transaction a retry cannot help
        return fn()
    for attempt in range(RETRIES):
        try:
            return fn()
        except OperationalError as e:
            if e.args[0] not in RETRY_ERRORS or attempt == RETRIES - 1:
                raise
            time.sleep(0.01 * (attempt + 1))


# --- writing --------------------------------------------------------------------------------------

def price_facts_store(facts: PriceFacts) -> int:
    """Store one report's facts: its pools, its samples (once each: a fact written twice adds nothing)
    and each pool's latest price, moved forward only. Returns the spot samples offered."""
    if not facts.spot and not facts.ondemand:
        return 0
    pools_ensure({pid: facts.region for pid, _ in facts.spot})
    spot = sorted(facts.spot)

    def append():
        # One transaction, rows in pool-id order: the foreign-key checks take shared locks on the pool
        # rows in that order. A sample already stored (same pool and time) is skipped.
        with transaction.atomic():
            SpotPriceSample.objects.bulk_create(
                [SpotPriceSample(pool_id=pid, price=price, observed_at=facts.at) for pid, price in spot],
                ignore_conflicts=True)
            if facts.ondemand:
                instance_type, region, price, fallback = facts.ondemand
                OnDemandPriceSample.objects.bulk_create(
                    [OnDemandPriceSample(instance_type=instance_type, region=region, price=price,
                                         is_fallback=fallback, observed_at=facts.at)], ignore_conflicts=True)

    with_deadlock_retry(append)
    # Reports arrive late or twice: a pool's latest price only moves forward in time. One statement
    # after the samples' commit (its row locks are taken in pool-id order, never while holding theirs).
    # The price is the pool's sample at that time, just stored (or already there): one subquery instead
    # of a CASE branch per pool, whose compilation cost a third of the report's CPU (docs/PERFORMANCE.md).
    if spot:
        sample_price = SpotPriceSample.objects.filter(pool=OuterRef("pk"), observed_at=facts.at).values("price")[:1]
        SpotPool.objects.filter(Q(latest_price_at__isnull=True) | Q(latest_price_at__lte=facts.at),
                                pk__in=[pid for pid, _ in spot]).update(
            latest_price=Subquery(sample_price), latest_price_at=facts.at)
    return len(spot)
