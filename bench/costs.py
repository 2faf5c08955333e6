"""What one agent costs each component (docs/SCALING.md): per call of the agent's steady mix, in-process
through Django's full stack (auth, routing, DRF, ORM; no HTTP server): CPU of the web process, SQL
reads and writes, Redis commands; then the write of the buffered heartbeats per agent (the web
process's background thread); then the totals per agent-second with the mix of bench/load.py (per
agent-minute: 2 heartbeats, 4 pending-commands, 1 config, 0.2 pricing reports). Twice: with the
agents' cache on Redis (production) and with no shared cache (Redis down, or no REDIS_URL).

Builds a throwaway database (`--db-name`, on DATABASE_URL: MariaDB like production) and uses the Redis
database at `--redis-url` for Django's cache (flushed at the start and the end).

    python bench/costs.py [--agents 500] [--calls 400] [--db-name bench_costs] [--redis-url redis://127.0.0.1:6379/5]
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spotbackend.settings")
os.environ.setdefault("DATABASE_URL", "mysql://root@127.0.0.1:3306/spotbackend")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1")
_parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
_parser.add_argument("--agents", type=int, default=500)
_parser.add_argument("--calls", type=int, default=400, help="calls measured per kind")
_parser.add_argument("--db-name", default="bench_costs")
_parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5"))
ARGS = _parser.parse_args()
os.environ["REDIS_URL"] = ARGS.redis_url
os.environ.setdefault("LOG_LEVEL", "ERROR")

import django  # noqa: E402

django.setup()

import redis  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings, setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

MIX = (("heartbeat", 2.0), ("pending-commands", 4.0), ("config", 1.0), ("pricing-report", 0.2))
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class RedisCounter:
    """Counts the commands sent to Redis (a pipeline counts each command it carries)."""

    def __init__(self):
        self.n = 0
        self._orig_exec = redis.Redis.execute_command
        self._orig_pipe = redis.client.Pipeline.execute
        counter = self

        def execute_command(client, *args, **kwargs):
            counter.n += 1
            return counter._orig_exec(client, *args, **kwargs)

        def pipeline_execute(pipe, *args, **kwargs):
            counter.n += len(pipe.command_stack)
            return counter._orig_pipe(pipe, *args, **kwargs)

        redis.Redis.execute_command = execute_command
        redis.client.Pipeline.execute = pipeline_execute


def seed(n):
    from agents.models import Agent, Instance
    from clients.services import client_create

    client, token = client_create(name="Costs", email="costs@example.com")
    now = timezone.now()
    agents = [Agent(client=client, logical_agent_id=f"cost-{i}", hostname=f"h{i}", instance_id=f"i-{i:012x}",
                    instance_type="t3.medium", region="us-east-1", az="us-east-1a", current_mode="spot",
                    status="online", last_heartbeat_at=now) for i in range(n)]
    Agent.objects.bulk_create(agents, batch_size=1000)
    Instance.objects.bulk_create([Instance(agent=a, client=client, instance_id=a.instance_id, started_at=now)
                                  for a in agents], batch_size=1000)
    return token, agents


def request_for(kind, agent, k):
    from agents.tests import payloads

    base = f"/api/agents/{agent.pk}"
    if kind == "heartbeat":
        return "post", f"{base}/heartbeat", payloads.heartbeat(instance_id=agent.instance_id)
    if kind == "pricing-report":
        at = (timezone.now() - timezone.timedelta(seconds=k + 1)).replace(tzinfo=None).isoformat()
        return "post", f"{base}/pricing-report", payloads.pricing_v4(instance_id=agent.instance_id, collected_at=at)
    if kind == "pending-commands":
        return "get", f"{base}/pending-commands?instance_id={agent.instance_id}", None
    return "get", f"{base}/config", None


def measure(http, kind, agents, calls, rc):
    """(CPU ms, SQL reads, SQL writes, Redis commands) per call, over `calls` calls spread on the agents."""
    for k, agent in enumerate(agents):  # warm: every agent seen once (caches filled, as in the steady state)
        method, path, body = request_for(kind, agent, k + calls)
        getattr(http, method)(path, body, format="json")
    reads = writes = 0
    r0 = rc.n
    cpu0 = time.process_time()
    with CaptureQueriesContext(connection) as ctx:
        for k in range(calls):
            method, path, body = request_for(kind, agents[k % len(agents)], k)
            r = getattr(http, method)(path, body, format="json")
            assert r.status_code == 200, (kind, r.status_code, r.content[:300])
    cpu = time.process_time() - cpu0
    for q in ctx.captured_queries:
        verb = q["sql"].lstrip().split(" ", 1)[0].upper()
        if verb in WRITES:
            writes += 1
        elif verb == "SELECT":
            reads += 1
    return cpu * 1000 / calls, reads / calls, writes / calls, (rc.n - r0) / calls


def flush_cost(agents, rc):
    """The buffer's write (agents/services/heartbeats.py): CPU ms, SQL statements, Redis commands per
    agent written."""
    from agents.services.heartbeats import heartbeats_flush

    r0, cpu0 = rc.n, time.process_time()
    with CaptureQueriesContext(connection) as ctx:
        flushed = heartbeats_flush()
    cpu = time.process_time() - cpu0
    n = max(flushed, 1)
    return flushed, cpu * 1000 / n, len(ctx.captured_queries) / n, (rc.n - r0) / n


def main():
    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.settings_dict.setdefault("TEST", {})["NAME"] = ARGS.db_name
    redis.Redis.from_url(ARGS.redis_url).flushdb()
    print(f"database: {connection.vendor}, creating the throwaway database {ARGS.db_name}...", flush=True)
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        from rest_framework.test import APIClient

        from django.conf import settings
        from django.core.cache import caches

        settings.HEARTBEAT_BUFFER_SECONDS = 3600  # the buffer's thread stays asleep: this script writes it
        token, agents = seed(ARGS.agents)
        http = APIClient()
        http.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        rc = RedisCounter()
        results = {}
        no_cache = {**settings.CACHES, "agents": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
        for label, cache_settings in (("the agents' cache on Redis (production)", settings.CACHES),
                                      ("no shared cache (Redis down)", no_cache)):
            with override_settings(CACHES=cache_settings):
                caches["agents"].clear()
                rows = {kind: measure(http, kind, agents, ARGS.calls, rc) for kind, _ in MIX}
                flush = flush_cost(agents, rc)
            results[label] = (rows, flush)
        print(f"\n{ARGS.agents} agents; {ARGS.calls} calls per kind; in-process (Django + DRF + ORM, no HTTP server)")
        for label, (rows, flush) in results.items():
            print(f"\n{label}")
            print(f"  {'call':18} {'CPU ms':>7} {'SQL reads':>10} {'SQL writes':>11} {'Redis cmds':>11}")
            for kind, (cpu, r, w, rd) in rows.items():
                print(f"  {kind:18} {cpu:7.2f} {r:10.2f} {w:11.2f} {rd:11.2f}")
            per_min = {k: w for k, w in MIX}
            tot = [sum(rows[k][i] * per_min[k] for k in per_min) / 60 for i in range(4)]
            print(f"  per agent-second (mix): CPU {tot[0]:.3f} ms, SQL reads {tot[1]:.3f}, SQL writes {tot[2]:.3f}, "
                  f"Redis commands {tot[3]:.3f}")
            print(f"  -> one web core (in-process CPU only) carries {1000 / tot[0]:,.0f} agents")
            if flush:
                flushed, cpu, sql, rd = flush
                print(f"  buffered heartbeats: {flushed} agents written; per agent: CPU {cpu:.3f} ms, "
                      f"SQL statements {sql:.3f}, Redis commands {rd:.3f} (every HEARTBEAT_BUFFER_SECONDS)")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        redis.Redis.from_url(ARGS.redis_url).flushdb()


if __name__ == "__main__":
    main()
