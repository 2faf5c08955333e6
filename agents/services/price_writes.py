"""Storing market prices: the samples of a pricing report and each pool's latest price, written before
the report is answered, so the next call of any kind sees them (docs/ARCHITECTURE.md §8).

Samples are unique per (pool, time), so writing a report twice adds nothing. Locks are taken in
pool-id order, each latest price in its own single-row statement, so concurrent writers cannot
deadlock (docs/ARCHITECTURE.md §6)."""
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from agents.models import OnDemandPriceSample, SpotPool, SpotPriceSample
from agents.services.pools import pools_ensure
from spotbackend.db.rows import ModelRows


INSERT_BATCH = 1_000
RETRY_ERRORS = (1213, 1205)  # MySQL/MariaDB: deadlock found; lock wait timeout exceeded
RETRIES = 3
_spot_rows, _ondemand_rows = ModelRows(SpotPriceSample), ModelRows(OnDemandPriceSample)


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
    """Store the facts of one report."""
    if not facts.spot and not facts.ondemand:
        return 0
    return price_facts_write([facts])


def price_facts_write(batch: list[PriceFacts]) -> int:
    """Store the facts of these reports: their pools, their samples (once each: a fact written twice
    adds nothing) and each pool's latest price, moved forward only. Returns the samples offered."""
    pool_regions = {pid: facts.region for facts in batch for pid, _ in facts.spot}
    pools_ensure(pool_regions)
    spot = sorted({(pid, facts.at): price for facts in batch for pid, price in facts.spot}.items())
    ondemand = sorted({(t, r, facts.at): (price, fallback)
                       for facts in batch if facts.ondemand for t, r, price, fallback in [facts.ondemand]}.items())

    ops = connection.ops
    created = ops.adapt_datetimefield_value(timezone.now())  # auto_now_add
    times = {}  # each report's one sample time, prepared once

    def db_time(at):
        if at not in times:
            times[at] = ops.adapt_datetimefield_value(at)
        return times[at]

    spot_rows = [(pid, price, db_time(at), created) for (pid, at), price in spot]
    ondemand_rows = [(t, r, price, fallback, db_time(at), created) for (t, r, at), (price, fallback) in ondemand]

    def append():
        # One transaction; INSERT IGNORE in (pool, time) order: the foreign-key checks take shared
        # locks on the pool rows in pool-id order. Plain rows (spotbackend/db/rows.py): the ORM's
        # bulk_create prepared every value of every instance again, most of a flush's CPU.
        with transaction.atomic():
            for start in range(0, len(spot_rows), INSERT_BATCH):
                _spot_rows.insert_values(["pool", "price", "observed_at", "created_at"],
                                         spot_rows[start:start + INSERT_BATCH], ignore_conflicts=True)
            for start in range(0, len(ondemand_rows), INSERT_BATCH):
                _ondemand_rows.insert_values(["instance_type", "region", "price", "is_fallback", "observed_at",
                                              "created_at"],
                                             ondemand_rows[start:start + INSERT_BATCH], ignore_conflicts=True)

    if spot or ondemand:
        with_deadlock_retry(append)
    latest: dict[str, tuple[datetime, Decimal]] = {}
    for (pid, at), price in spot:  # sorted by time within a pool: the last one is the newest
        latest[pid] = (at, price)
    _latest_prices_move(latest)
    return len(spot)


def _latest_prices_move(latest: dict[str, tuple[datetime, Decimal]]) -> None:
    """Only move a pool's latest price forward in time (reports can arrive late or twice): one
    single-row statement per pool, in pool-id order, each committed on its own (no row waits for
    another). Plain SQL compiled once: the ORM built the same statement per pool at ~0.3 ms each."""
    if not latest:
        return
    ops = connection.ops
    table, qn = SpotPool._meta.db_table, ops.quote_name
    sql = (f"UPDATE {qn(table)} SET {qn('latest_price')} = %s, {qn('latest_price_at')} = %s "
           f"WHERE {qn('id')} = %s AND ({qn('latest_price_at')} IS NULL OR {qn('latest_price_at')} <= %s)")
    rows = []
    for pid in sorted(latest):
        at, price = latest[pid]
        at = ops.adapt_datetimefield_value(at)
        rows.append((ops.adapt_decimalfield_value(price, 12, 6), at, pid, at))
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
