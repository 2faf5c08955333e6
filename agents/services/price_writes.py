"""Storing market prices: the samples of a pricing report and each pool's latest price, written at
once or behind (docs/PERFORMANCE.md, "Pricing reports written behind").

A pricing report's facts (its kept quotes, its on-demand quote, one sample time) are stored by
`price_facts_write`, for one report or for many at once, so a pool's latest price and its samples have
one writer. With PRICE_WRITE_BEHIND and Redis answering, the web request only queues the facts in a
Redis list (one round trip); the write-behind task (agents/periodic.py, every
HEARTBEAT_FLUSH_SECONDS) takes the list and writes every queued report in a few bulk statements:
one sample INSERT per 1,000 rows and one latest-price UPDATE per pool per flush instead of one per
report. Samples are unique per (pool, time), so writing a report twice adds nothing: a flush that
fails returns its reports to the list and the next one writes them again. If no worker runs the
task, the web request that finds the oldest queued report older than HEARTBEAT_FLUSH_OVERDUE_SECONDS
flushes. Without Redis every report is written at once, as before.

Locks are taken in pool-id order, each latest price in its own single-row statement, so concurrent
writers cannot deadlock (docs/PERFORMANCE.md, "Background jobs")."""
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from agents.models import OnDemandPriceSample, SpotPool, SpotPriceSample
from agents.services.market import stored_quotes_forget
from agents.services.pools import pools_ensure
from spotbackend.db.rows import ModelRows
from spotbackend.hotcache import HotScript

logger = logging.getLogger(__name__)

PENDING = "sb:prices:pending"  # queued reports (JSON), oldest first
PENDING_SINCE = "sb:prices:since"  # epoch seconds of the oldest queued report
TAKE_BATCH = 2_000  # reports per take: a flush of a big backlog works in bounded slices
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

    def dumps(self) -> str:
        od = list(self.ondemand[:2]) + [str(self.ondemand[2]), self.ondemand[3]] if self.ondemand else None
        return json.dumps({"at": self.at.isoformat(), "region": self.region,
                           "spot": [[pid, str(price)] for pid, price in self.spot], "od": od},
                          separators=(",", ":"))

    @classmethod
    def loads(cls, raw: str) -> "PriceFacts":
        data = json.loads(raw)
        od = data.get("od")
        return cls(at=parse_datetime(data["at"]), region=data["region"],
                   spot=[(pid, Decimal(price)) for pid, price in data["spot"]],
                   ondemand=(od[0], od[1], Decimal(od[2]), bool(od[3])) if od else None)


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
    if any(not fallback for _, (_, fallback) in ondemand):
        stored_quotes_forget()  # this process reads the new real quotes at once
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


# --- write-behind -----------------------------------------------------------------------------------

_QUEUE = HotScript("""
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'NX')
return math.floor(tonumber(ARGV[2]) - tonumber(redis.call('GET', KEYS[2])))
""")

_TAKE = HotScript("""
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
redis.call('LTRIM', KEYS[1], #items, -1)
if redis.call('LLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) end
return items
""")

_PUT_BACK = HotScript("""
for i = 2, #ARGV do redis.call('RPUSH', KEYS[1], ARGV[i]) end
redis.call('SET', KEYS[2], ARGV[1], 'NX')
return #ARGV - 1
""")


def price_facts_store(facts: PriceFacts) -> None:
    """Queue the facts for the write-behind task, or write them now (write-behind off, Redis
    unavailable). A web process flushes the queue itself when the task is late."""
    if not facts.spot and not facts.ondemand:
        return
    if settings.PRICE_WRITE_BEHIND:
        age = _QUEUE(keys=[PENDING, PENDING_SINCE], args=[facts.dumps(), repr(time.time())], default=None)
        if age is not None:
            if age > settings.HEARTBEAT_FLUSH_OVERDUE_SECONDS:
                try:
                    prices_flush()
                except Exception:  # the report is queued; the next request or the task writes it
                    logger.exception("overdue price flush failed")
            return
    price_facts_write([facts])


def prices_flush() -> int:
    """Write every queued report in bulk; return how many samples were offered. Each take removes its
    reports from Redis atomically (a concurrent flusher gets others); a failed write puts them back."""
    written = 0
    while True:
        raws = _TAKE(keys=[PENDING, PENDING_SINCE], args=[TAKE_BATCH], default=None) or []
        if not raws:
            return written
        batch = []
        for raw in raws:
            try:
                batch.append(PriceFacts.loads(raw))
            except (ValueError, KeyError, TypeError, IndexError):
                logger.error("dropped an unreadable queued price report: %.200s", raw)
        try:
            written += price_facts_write(batch)
        except Exception:
            _PUT_BACK(keys=[PENDING, PENDING_SINCE], args=[repr(time.time()), *raws])
            logger.exception("price flush failed; %d reports kept for the next flush", len(raws))
            raise
        if len(raws) < TAKE_BATCH:
            return written
