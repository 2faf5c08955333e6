"""Background jobs at fleet scale (issue 8 item 5): pool risk analysis, daily savings, the stale sweep.

Builds a throwaway MariaDB database (bench_jobs_<name>, on DATABASE_URL), seeds it with generated SQL
(10,000 agents over 1,000 clients, 5,000 pools with 24 h of 5-minute spot samples = 1.44 M rows, a month
of hourly on-demand quotes, a month of instance history), then runs each job once in a forked child
process and prints its wall time, its SQL statement count and its peak RSS growth (sampled every 10 ms;
counts C-level result buffers too, which tracemalloc would miss). Not a test: it prints numbers.

Usage: python bench/jobs.py [--clients 1000] [--agents-per-client 10] [--pools 5000] [--spot-hours 24]
       [--keep]  (keep the database afterwards, e.g. to EXPLAIN queries by hand)
       [--reuse --now T]  (time the jobs again on the database a --keep run with --now T left)
"""
import argparse
import gc
import multiprocessing
import os
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spotbackend.settings")
os.environ.setdefault("DATABASE_URL", "mysql://root@127.0.0.1:3306/spotbackend")
# Settings refuse the development key with DEBUG off (deploy safety); a bench run brings its own.
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")
# Seeding runs statements of a minute; the web's short read timeout (hardening) is not for this.
os.environ.setdefault("DB_READ_TIMEOUT", "3600")
os.environ.setdefault("DB_WRITE_TIMEOUT", "3600")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1"]
FAMILIES = ["t3", "t3a", "m5", "m5a", "m6i", "c5", "c5a", "c6i", "r5", "r6i"]
SIZES = ["nano", "micro", "small", "medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge",
         "16xlarge", "24xlarge", "metal", "9xlarge", "18xlarge", "32xlarge", "48xlarge", "3xlarge", "6xlarge",
         "10xlarge", "20xlarge", "36xlarge", "56xlarge", "64xlarge", "112xlarge"]
AZ_LETTERS = "abcd"


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _exec(sql: str, params=None) -> int:
    with connection.cursor() as c:
        c.execute(sql, params)
        return c.rowcount


def _model_defaults(table: str, columns: list[str]) -> tuple[list[str], tuple]:
    """Columns of the table's model that the bench does not set and that need a value (NOT NULL,
    no database default), with the model's default: new model fields do not break the seeding."""
    from django.apps import apps

    model = next((m for m in apps.get_models() if m._meta.db_table == table), None)
    extra_cols, extra_vals = [], []
    for f in model._meta.concrete_fields if model else []:
        if f.column in columns or f.null or f.primary_key or not f.has_default():
            continue
        extra_cols.append(f.column)
        extra_vals.append(f.get_db_prep_save(f.get_default(), connection))
    return extra_cols, tuple(extra_vals)


def _insert_many(table: str, columns: list[str], rows: list[tuple], batch: int = 5000) -> None:
    extra_cols, extra_vals = _model_defaults(table, columns)
    columns = columns + extra_cols
    rows = [row + extra_vals for row in rows] if extra_cols else rows
    cols = ", ".join(columns)
    marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
    with connection.cursor() as c:
        for i in range(0, len(rows), batch):
            chunk = rows[i : i + batch]
            c.execute(f"INSERT INTO {table} ({cols}) VALUES " + ", ".join([marks] * len(chunk)),
                      [v for row in chunk for v in row])


def seed(args, now) -> dict:
    """Generated rows, deterministic. Returns a few counts for the header."""
    import uuid

    from clients.models import token_hash

    t0 = time.perf_counter()
    now = now.replace(tzinfo=None)  # raw SQL parameters: naive UTC, as Django stores them
    types = [f"{f}.{s}" for f in FAMILIES for s in SIZES][: args.types]
    keys = [(t, r) for t in types for r in REGIONS]  # (type, region): 250 x 5 = 1,250
    azs = {r: [f"{r}{x}" for x in AZ_LETTERS] for r in REGIONS}
    pools = [(f"{t}.{az}", t, r, az) for t, r in keys for az in azs[r]][: args.pools]
    pools_by_key: dict[tuple, list[str]] = {}
    for pid, t, r, _ in pools:
        pools_by_key.setdefault((t, r), []).append(pid)
    keys = [k for k in keys if k in pools_by_key]

    clients = [(uuid.uuid4().hex, f"client {n}", f"c{n}@example.com", token_hash(f"tok-{n}"), "tok", 1, now, now)
               for n in range(args.clients)]
    _insert_many("clients", ["id", "name", "email", "token_hash", "token_prefix", "is_active", "created_at",
                             "updated_at"], clients)
    _insert_many("spot_pools", ["id", "instance_type", "region", "az", "latest_price", "latest_price_at",
                                "risk_recommendation", "created_at"],
                 [(pid, t, r, az, None, None, "", now) for pid, t, r, az in pools])

    # Spot samples: every pool, every 5 minutes over --spot-hours, ending at `now` (rounded down).
    end = now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % 5)
    steps = args.spot_hours * 12
    first = end - timedelta(minutes=5 * (steps - 1))
    _exec(
        f"""INSERT INTO spot_price_samples (pool_id, price, observed_at, created_at)
            SELECT p.id, ROUND(0.005 + (CRC32(CONCAT(p.id, s.seq)) %% 5000) / 100000, 6),
                   %s + INTERVAL (s.seq * 5) MINUTE, %s
            FROM spot_pools p JOIN seq_0_to_{steps - 1} s ORDER BY s.seq, p.id""",
        [first, now],
    )
    _exec("""UPDATE spot_pools p JOIN spot_price_samples s ON s.pool_id = p.id AND s.observed_at = %s
             SET p.latest_price = s.price, p.latest_price_at = s.observed_at""", [end])

    # On-demand: hourly real quotes for 30 days for 90 % of the keys; the agents' fallback (0.1) every
    # 6 h for every key (at :30, so (type, region, observed_at) stays unique); 10 % of keys fallback only.
    od_start = end.replace(minute=0) - timedelta(days=args.days)
    _exec("CREATE TEMPORARY TABLE bench_keys (instance_type varchar(64), region varchar(32), real_ok tinyint)")
    _insert_many("bench_keys", ["instance_type", "region", "real_ok"],
                 [(t, r, 0 if n % 10 == 9 else 1) for n, (t, r) in enumerate(keys)])
    hours = args.days * 24
    _exec(
        f"""INSERT INTO ondemand_price_samples (instance_type, region, price, is_fallback, observed_at, created_at)
            SELECT k.instance_type, k.region, ROUND(0.02 + (CRC32(k.instance_type) %% 400) / 1000, 6), 0,
                   %s + INTERVAL s.seq HOUR, %s
            FROM bench_keys k JOIN seq_0_to_{hours - 1} s WHERE k.real_ok = 1 ORDER BY s.seq""",
        [od_start, now],
    )
    _exec(
        f"""INSERT INTO ondemand_price_samples (instance_type, region, price, is_fallback, observed_at, created_at)
            SELECT k.instance_type, k.region, 0.1, 1, %s + INTERVAL (s.seq * 6 * 60 + 30) MINUTE, %s
            FROM bench_keys k JOIN seq_0_to_{hours // 6 - 1} s ORDER BY s.seq""",
        [od_start, now],
    )

    # Agents and a month of instance history: each agent moves every ~3 days (spot 80 %, on-demand 20 %),
    # with a switch row per move. 10 % of agents are silent (the sweep turns them offline).
    import random

    rnd = random.Random(8)
    agents, instances, switches = [], [], []
    hist_start = end - timedelta(days=args.days)
    n_agents = args.clients * args.agents_per_client
    for n in range(n_agents):
        cid = clients[n // args.agents_per_client][0]
        aid = uuid.uuid4().hex
        t, r = keys[n % len(keys)]
        candidates = pools_by_key[(t, r)]
        t_at = hist_start - timedelta(hours=rnd.randrange(0, 48))
        k = 0
        prev = None
        while True:
            mode = "spot" if rnd.random() < 0.8 else "ondemand"
            pool_id = rnd.choice(candidates) if mode == "spot" else None
            az = pool_id.rsplit(".", 1)[1] if pool_id else azs[r][0]
            nxt = t_at + timedelta(hours=rnd.randrange(24, 120))
            last = nxt >= end
            iid = f"i-{n:07x}{k:05x}"
            instances.append((aid, cid, iid, t, r, az, "", mode, pool_id, "primary" if last else "replaced",
                              1 if last else None, t_at, None if last else nxt, now, now))
            if prev is not None:
                switches.append((uuid.uuid4().hex, aid, cid, prev[0], iid, prev[1], mode, prev[2], az,
                                 prev[3] or "", pool_id or "", 0, "manual", t_at, t_at, "{}", now))
            prev = (iid, mode, az, pool_id)
            if last:
                break
            t_at, k = nxt, k + 1
        silent = n % 10 == 0
        agents.append((aid, cid, f"agent-{n}", f"host-{n}", iid, t, r, az, "", "", "", "4.0.0", mode, pool_id,
                       "online", 1, 0, 1, 0, 0, end - timedelta(hours=2) if silent else now, 0, now, now))
    _insert_many("agents", ["id", "client_id", "logical_agent_id", "hostname", "instance_id", "instance_type",
                            "region", "az", "ami_id", "private_ip", "public_ip", "agent_version", "current_mode",
                            "current_pool_id", "status", "enabled", "auto_switch_enabled",
                            "auto_terminate_enabled", "manual_replica_enabled", "replica_count",
                            "last_heartbeat_at", "emergency_replica_count", "registered_at", "updated_at"], agents)
    _insert_many("instances", ["agent_id", "client_id", "instance_id", "instance_type", "region", "az", "ami_id",
                               "mode", "pool_id", "state", "is_primary", "started_at", "ended_at", "last_seen_at",
                               "created_at"], instances)
    _insert_many("switches", ["id", "agent_id", "client_id", "old_instance_id", "new_instance_id", "old_mode",
                              "new_mode", "old_az", "new_az", "old_pool_id", "new_pool_id", "savings_impact",
                              "trigger_type", "initiated_at", "completed_at", "report", "created_at"], switches)
    # A few hundred interruptions in the last day, for the risk score.
    spot_inst = [i for i in instances if i[7] == "spot" and i[8]]
    _insert_many("termination_events", ["agent_id", "client_id", "instance_id", "pool_id", "event_type",
                                        "notice_key", "action_taken", "detected_at", "notice_count", "status",
                                        "metadata", "created_at"],
                 [(i[0], i[1], i[2], i[8], "termination_notice" if n % 2 else "rebalance_recommendation",
                   f"k{n}", "", end - timedelta(minutes=3 * n), 1, "detected", "{}", now)
                  for n, i in enumerate(rnd.sample(spot_inst, 400))])
    _exec("ANALYZE TABLE spot_price_samples, ondemand_price_samples, instances, agents, spot_pools")
    counts = table_counts()
    counts["seconds"] = round(time.perf_counter() - t0, 1)
    return counts


def table_counts() -> dict:
    counts = {}
    for table in ("clients", "agents", "spot_pools", "spot_price_samples", "ondemand_price_samples", "instances",
                  "switches", "termination_events"):
        with connection.cursor() as c:
            c.execute(f"SELECT COUNT(*) FROM {table}")
            counts[table] = c.fetchone()[0]
    return counts


def risk_reset(now) -> None:
    """On reused data: forget the slot's analyses and the pools' verdicts, so that the next risk run is
    a first run of its slot again (every row inserted, every pool row written)."""
    from agents.services.risk import risk_slot

    _exec("DELETE FROM pool_risk_analysis WHERE analyzed_at = %s", [risk_slot(now).replace(tzinfo=None)])
    _exec("UPDATE spot_pools SET risk_score = NULL, risk_recommendation = ''")


def _child(job, now, pipe):
    from django.db import connection as conn

    conn.close()  # a fresh connection in the child; the parent's was closed before the fork
    gc.collect()
    queries = [0]

    def counter(execute, sql, params, many, context):
        queries[0] += 1
        return execute(sql, params, many, context)

    base = _rss_mb()
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.01)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        with conn.execute_wrapper(counter):
            t0 = time.perf_counter()
            summary = job(now)
            elapsed = time.perf_counter() - t0
    except BaseException as e:  # report, so the parent does not wait forever
        stop.set()
        pipe.send((0.0, queries[0], 0.0, f"FAILED: {e!r}"))
        raise
    stop.set()
    th.join()
    peak[0] = max(peak[0], _rss_mb())
    pipe.send((elapsed, queries[0], peak[0] - base, summary))


def run_job(name, job, now):
    connection.close()
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child, args=(job, now, send))
    p.start()
    send.close()  # so that a child that dies makes recv() fail instead of waiting forever
    try:
        elapsed, queries, mem, summary = recv.recv()
    finally:
        p.join()
    print(f"{name:44} {elapsed:8.2f} s {queries:8d} queries {mem:8.1f} MB  {summary}", flush=True)
    return elapsed


def job_risk(now):
    from agents.services.risk import pool_risk_analyze_all

    r = pool_risk_analyze_all(now=now)
    return f"analyzed={r['analyzed']} avoid={r['avoid']}"


def _digest(days) -> str:
    """Sums and a hash of every stored snapshot of `days`: equal digests = the same rows to the cent."""
    import hashlib

    from savings.models import SavingsSnapshot

    rows = SavingsSnapshot.objects.filter(snapshot_date__in=days).order_by("client__name", "snapshot_date").values_list(
        "client__name", "snapshot_date", "total_savings", "spot_hours", "ondemand_hours", "actual_cost",
        "ondemand_cost", "switch_count", "average_savings_percent")
    h = hashlib.sha256()
    savings = cost = 0
    for r in rows:
        h.update(repr(r).encode())
        savings += r[2]
        cost += r[5]
    return f"savings={savings} actual_cost={cost} rows-sha256={h.hexdigest()[:16]}"


def job_savings_daily(now):
    from savings.services import savings_daily_run

    s = savings_daily_run(now=now)
    today = now.date()
    return f"snapshots={s.snapshots} [{_digest([today - timedelta(days=1), today])}]"


def job_savings_day(now):
    from savings.services import savings_compute_range

    day = (now - timedelta(days=1)).date()  # a complete day, with spot samples for part of it
    s = savings_compute_range(day_from=day, day_to=day, now=now)
    return f"day={day} snapshots={s.snapshots} [{_digest([day])}]"


def job_sweep(now):
    from agents.services.sweeps import agents_mark_stale_offline

    return f"marked_offline={agents_mark_stale_offline(now=now)}"


def job_stats_card(now):
    from clients.models import Client
    from clients.selectors import client_stats

    client = Client.objects.order_by("pk").first()
    client_stats(client=client, now=now)
    return f"client={client.pk}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--agents-per-client", type=int, default=10)
    parser.add_argument("--pools", type=int, default=5000)
    parser.add_argument("--types", type=int, default=250)
    parser.add_argument("--spot-hours", type=int, default=24)
    parser.add_argument("--days", type=int, default=30, help="days of on-demand quotes and instance history")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true",
                        help="use the database an earlier --keep run left (same --db), without seeding, and keep "
                             "it; pass that run's --now. Seeding leaves InnoDB busy for a while (purge, page "
                             "flushing), which the jobs timed right after it pay for")
    parser.add_argument("--now", help="ISO time the data ends at (default: now); fixed = comparable runs")
    parser.add_argument("--db", default="bench_jobs", help="name prefix of the throwaway database")
    parser.add_argument("--jobs", default="risk,savings,day,stats,sweep",
                        help="comma-separated subset of: risk, savings, day, stats, sweep")
    args = parser.parse_args()

    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"{args.db}_{old_name.rsplit('/', 1)[-1]}"
    if args.reuse and not args.now:
        parser.error("--reuse needs the --now of the run that seeded the database")
    print(f"database: {connection.vendor}, " + ("reusing a kept database..." if args.reuse else
                                                 "creating a throwaway database..."), flush=True)
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=args.reuse, serialize=False)
    try:
        from datetime import datetime

        now = datetime.fromisoformat(args.now) if args.now else timezone.now()
        if args.reuse:
            counts = table_counts()
            if not counts["spot_pools"]:
                args.reuse = False  # an empty database made just now: not kept
                raise SystemExit(f"no seeded database {connection.settings_dict['NAME']} to reuse (a --keep run makes one)")
            print("reused: " + ", ".join(f"{k}={v}" for k, v in counts.items()), flush=True)
        else:
            counts = seed(args, now)
            print("seeded: " + ", ".join(f"{k}={v}" for k, v in counts.items()), flush=True)
        print(f"\n{'job':44} {'time':>10} {'SQL':>16} {'peak RSS growth':>11}")
        jobs = set(args.jobs.split(","))
        if "risk" in jobs:
            if args.reuse:
                risk_reset(now)
            run_job("pool risk analysis (all pools)", job_risk, now)
            run_job("pool risk analysis (again, same slot)", job_risk, now)
        if "savings" in jobs:
            run_job("daily savings, all clients (yesterday+today)", job_savings_daily, now)
        if "day" in jobs:
            one = run_job("savings, all clients, yesterday only", job_savings_day, now)
            print(f"{'  -> 30-day recalculation, estimated (x30)':44} {one * 30:8.1f} s", flush=True)
        if "savings" in jobs:
            run_job("daily savings again (nothing changed)", job_savings_daily, now)
        if "stats" in jobs:
            run_job("stats card (one client, live today+yesterday)", job_stats_card, now)
        if "sweep" in jobs:
            run_job("stale-agent sweep (1,000 stale agents)", job_sweep, now + timedelta(seconds=1))
    finally:
        if args.keep or args.reuse:
            print(f"kept database {connection.settings_dict['NAME']}")
        else:
            connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
