"""What one termination notice costs the server (docs/PERFORMANCE.md, "Termination notices").

Builds a throwaway database (bench_notice_<name>, on DATABASE_URL; MariaDB under `make bench-inprocess`),
seeds the load benchmark's fleet (5 instance types in two regions, 45 pools with fresh prices, the agents
registered through the API, one client), then posts through Django's full stack (auth, routing, DRF, ORM;
no HTTP) and prints, for the first notice of an agent (the decision) and for its repeats:
- SQL statements per call (savepoints counted apart) and commits per call (each one an fsync on MariaDB);
- the process's CPU time and the wall time per call (median, p95);
- how long the agent row stays locked (from the SELECT ... FOR UPDATE to the commit).
First notices come from distinct agents, one after the other, so later ones see the earlier ones'
events (as in the load benchmark's burst): compare the first and the last tenth for growth.

Usage: python bench/notice.py [--agents 600] [--notices 500] [--repeats 300] [--history 3000] [--webhook]
  --history N   termination events of other clients in the last 24 h, in the same pools, before the run
  --webhook     set TERMINATION_NOTIFICATION_WEBHOOK (an outbox row per notice, published after commit:
                needs REDIS_URL as the Celery broker, or the filesystem broker of embedded mode)
"""
import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spotbackend.settings")
os.environ.setdefault("DATABASE_URL", "mysql://root@127.0.0.1:3306/spotbackend")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.backends.base.base import BaseDatabaseWrapper  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

REGIONS = {"us-east-1": "abcdef", "eu-west-1": "abc"}
TYPES = {"t3.medium": 0.0125, "t3.large": 0.0251, "m5.large": 0.0372, "c5.large": 0.0318, "r5.large": 0.0401}


class Probe:
    """Counts statements and commits and times the agent lock of the calls made inside `watch()`."""

    def __init__(self):
        self.statements = self.savepoints = self.commits = 0
        self.locked_at = None
        self.lock_held = []
        self._orig_commit = BaseDatabaseWrapper.commit
        probe = self

        def commit(self_):
            probe.commits += 1
            return probe._orig_commit(self_)

        BaseDatabaseWrapper.commit = commit

    def __call__(self, execute, sql, params, many, context):
        if "SAVEPOINT" in sql:
            self.savepoints += 1
        else:
            self.statements += 1
            head = sql.lstrip()[:6].upper()
            if not context["connection"].in_atomic_block and head in ("INSERT", "UPDATE", "DELETE"):
                self.commits += 1  # autocommit: one statement, one commit
            if sql.rstrip().endswith("FOR UPDATE") and context["connection"].in_atomic_block:
                self.locked_at = time.perf_counter()
                transaction.on_commit(self._unlocked)
        return execute(sql, params, many, context)

    def _unlocked(self):
        if self.locked_at is not None:
            self.lock_held.append(time.perf_counter() - self.locked_at)
            self.locked_at = None

    def reset(self):
        self.statements = self.savepoints = self.commits = 0


def seed(http, n_agents: int, history: int):
    from agents.models import Agent, SpotPool, TerminationEvent
    from clients.models import Client
    from clients.services import client_create

    client, token = client_create(name="Bench notices", email="bench@example.com")
    now = timezone.now()
    pools = []
    for itype, price in TYPES.items():
        for region, letters in REGIONS.items():
            for k, letter in enumerate(letters):
                az = f"{region}{letter}"
                pools.append(SpotPool(pk=f"{itype}.{az}", instance_type=itype, region=region, az=az,
                                      latest_price=round(price * (1 + 0.04 * k), 6), latest_price_at=now))
    SpotPool.objects.bulk_create(pools)
    http.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    agents = []
    for i in range(n_agents):
        itype = list(TYPES)[i % len(TYPES)]
        region = "eu-west-1" if i % 3 == 2 else "us-east-1"
        letters = REGIONS[region]
        az = f"{region}{letters[(i // len(TYPES)) % len(letters)]}"
        body = {"client_token": token, "hostname": f"ip-10-0-{i // 250}-{i % 250}",
                "instance_id": f"i-{0x0b0000000 + i:017x}", "instance_type": itype, "region": region, "az": az,
                "ami_id": "ami-0abc1234", "agent_version": "4.0.0", "logical_agent_id": f"bench-{i:05d}",
                "mode": "spot", "private_ip": f"10.0.{i // 250}.{i % 250}", "public_ip": None}
        r = http.post("/api/agents/register", body, format="json")
        assert r.status_code in (200, 201), r.content[:300]
        agents.append(Agent.objects.get(pk=r.json()["agent_id"]))
    if history:
        others = [Client.objects.create(name=f"other {k}", email=f"o{k}@example.com", token_hash=f"{k:064x}",
                                        token_prefix=f"o{k}") for k in range(3)]
        victims = agents[:3]
        events = []
        for k in range(history):
            pool = pools[k % len(pools)]
            events.append(TerminationEvent(
                agent=victims[k % 3], client=others[k % 3], instance_id=f"i-hist{k:08x}", pool_id=pool.pk,
                event_type="termination_notice", notice_key=f"h{k}", action_taken="create_emergency_replica",
                detected_at=now - timedelta(hours=23) + timedelta(seconds=k), last_seen_at=now, status="handling"))
        TerminationEvent.objects.bulk_create(events, batch_size=1000)
    return token, agents


def summary(values, scale=1000.0) -> str:
    if not values:
        return "-"
    s = sorted(values)
    return f"median {statistics.median(s) * scale:6.2f}  p95 {s[max(int(len(s) * 0.95) - 1, 0)] * scale:6.2f}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=600)
    parser.add_argument("--notices", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--history", type=int, default=3000)
    parser.add_argument("--webhook", action="store_true")
    parser.add_argument("--show-sql", action="store_true", help="print the statements of one first notice and one repeat")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="after the measurement, profile N more first notices (cProfile, top functions)")
    args = parser.parse_args()
    if args.webhook:
        settings.TERMINATION_NOTIFICATION_WEBHOOK = "http://127.0.0.1:9/bench-never-delivered"

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"bench_notice_{old_name.rsplit('/', 1)[-1]}"
    print(f"database: {connection.vendor}, creating a throwaway database...", flush=True)
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        from rest_framework.test import APIClient

        http = APIClient()
        t0 = time.perf_counter()
        token, agents = seed(http, args.agents, args.history)
        print(f"seeded 45 pools, {len(agents)} agents, {args.history} older events in {time.perf_counter() - t0:.1f}s "
              f"(webhook {'on' if args.webhook else 'off'})", flush=True)
        deadline = (timezone.now() + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")

        def body(a):
            return {"instance_id": a.instance_id, "termination_time": deadline,
                    "detected_at": timezone.now().replace(tzinfo=None).isoformat()}

        def post(a):
            return http.post(f"/api/agents/{a.pk}/termination-imminent", body(a), format="json")

        spare = agents[args.notices:]
        for a in spare[:20]:  # warm the stack (first notices of spare agents)
            post(a)
        spare = spare[20:]
        probe = Probe()
        firsts = {"cpu": [], "wall": [], "statements": [], "savepoints": [], "commits": []}
        for i, a in enumerate(agents[:args.notices]):
            probe.reset()
            with connection.execute_wrapper(probe):
                c0, w0 = time.process_time(), time.perf_counter()
                r = post(a)
                firsts["wall"].append(time.perf_counter() - w0)
                firsts["cpu"].append(time.process_time() - c0)
            assert r.status_code == 200 and r.json()["create_emergency_replica"] is True, r.content[:300]
            firsts["statements"].append(probe.statements)
            firsts["savepoints"].append(probe.savepoints)
            firsts["commits"].append(probe.commits)
        first_lock = list(probe.lock_held)
        probe.lock_held.clear()
        repeats = {"cpu": [], "wall": [], "statements": [], "savepoints": [], "commits": []}
        for k in range(args.repeats):
            a = agents[k % args.notices]
            probe.reset()
            with connection.execute_wrapper(probe):
                c0, w0 = time.process_time(), time.perf_counter()
                r = post(a)
                repeats["wall"].append(time.perf_counter() - w0)
                repeats["cpu"].append(time.process_time() - c0)
            assert r.status_code == 200 and r.json()["create_emergency_replica"] is False, r.content[:300]
            repeats["statements"].append(probe.statements)
            repeats["savepoints"].append(probe.savepoints)
            repeats["commits"].append(probe.commits)
        repeat_lock = list(probe.lock_held)

        # Python function calls per call (cProfile's count): the interpreter's work, steady whatever
        # else runs on the machine, unlike CPU time.
        import cProfile
        import pstats

        def calls_per(batch):
            prof = cProfile.Profile(time.process_time)  # CPU, not time spent waiting on the database
            prof.enable()
            for a in batch:
                post(a)
            prof.disable()
            return pstats.Stats(prof).total_calls / len(batch)

        n_calls = min(30, max(len(spare) // 3, 1))
        firsts["pycalls"] = calls_per([spare.pop() for _ in range(n_calls)])
        repeats["pycalls"] = calls_per(agents[:n_calls])
        tenth = max(args.notices // 10, 1)
        print(f"\n{'call':14} {'statements':>10} {'savepoints':>10} {'commits':>7} {'py calls':>9}   {'CPU ms':>22}   "
              f"{'wall ms':>22}   {'agent locked ms':>22}")
        for name, m, lock in (("first notice", firsts, first_lock), ("repeat", repeats, repeat_lock)):
            print(f"{name:14} {statistics.median(m['statements']):10.0f} {statistics.median(m['savepoints']):10.0f} "
                  f"{statistics.median(m['commits']):7.0f} {m['pycalls']:9.0f}   {summary(m['cpu'])}   {summary(m['wall'])}   "
                  f"{summary(lock)}")
        print(f"\nfirst notices, first tenth vs last tenth: statements {max(firsts['statements'][:tenth])} / "
              f"{max(firsts['statements'][-tenth:])} (max), CPU median {statistics.median(firsts['cpu'][:tenth]) * 1000:.2f} / "
              f"{statistics.median(firsts['cpu'][-tenth:]) * 1000:.2f} ms")
        if args.show_sql:
            from django.test.utils import CaptureQueriesContext

            for label, a in (("first notice", spare.pop()), ("repeat", agents[0])):
                with CaptureQueriesContext(connection) as ctx:
                    post(a)
                print(f"\n{label}:")
                for q in ctx.captured_queries:
                    print("  ", q["sql"][:160])
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile(time.process_time)  # CPU, not time spent waiting on the database
            batch = [spare.pop() for _ in range(min(args.profile, len(spare)))]
            prof.enable()
            for a in batch:
                post(a)
            prof.disable()
            print(f"\nprofile of {len(batch)} first notices:")
            stats = pstats.Stats(prof)
            stats.sort_stats("cumulative").print_stats(int(os.environ.get("PROFILE_LINES", "60")))
            stats.sort_stats("tottime").print_stats(25)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
