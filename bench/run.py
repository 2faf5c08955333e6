"""Fleet benchmark of the agent's frequent calls (heartbeat, config, pending-commands, register).

Builds a throwaway database (test_<name>, on DATABASE_URL; MariaDB under `make bench`), seeds a fleet,
then times each call in-process through Django's full stack (auth, routing, DRF, ORM) and prints the
median and p95 per call and the number of queries, for an agent with no history and one with a long
history, side by side. Usage: python bench/run.py [--agents 2000] [--history 200] [--calls 300]
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
# Settings refuse the development key with DEBUG off (deploy safety); a bench run brings its own.
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402


def seed(n_agents: int, history: int):
    from agents.models import Agent, Command, Instance, SystemEvent
    from clients.services import client_create

    client, token = client_create(name="Bench", email="bench@example.com")
    now = timezone.now()
    agents = [
        Agent(client=client, logical_agent_id=f"bench-{i}", hostname=f"h{i}", instance_id=f"i-{i:012x}",
              instance_type="t3.medium", region="us-east-1", az="us-east-1a", current_mode="spot",
              last_heartbeat_at=now)
        for i in range(n_agents)
    ]
    Agent.objects.bulk_create(agents, batch_size=1000)
    Instance.objects.bulk_create(
        [Instance(agent=a, client=client, instance_id=a.instance_id, started_at=now) for a in agents], batch_size=1000
    )
    heavy = agents[0]
    Instance.objects.bulk_create(
        [Instance(agent=heavy, client=client, instance_id=f"i-old{k}", state="replaced", is_primary=None,
                  started_at=now - timedelta(hours=k + 1), ended_at=now - timedelta(hours=k)) for k in range(history)]
    )
    Command.objects.bulk_create(
        [Command(agent=heavy, target_mode="ondemand", status="succeeded", is_open=None) for _ in range(history)]
    )
    SystemEvent.objects.bulk_create(
        [SystemEvent(agent=heavy, client=client, event_type="x", message="x") for _ in range(history * 10)]
    )
    return token, heavy, agents[-1], agents[1:21]


def measure(http, method, path, body, calls):
    samples = []
    fn = getattr(http, method)
    r = fn(path, body, format="json")  # warm-up (for a notice: the first post, which decides)
    assert r.status_code == 200, (path, r.status_code, r.content[:200])
    with CaptureQueriesContext(connection) as ctx:
        fn(path, body, format="json")
    queries = len(ctx.captured_queries)
    for _ in range(calls):
        t0 = time.perf_counter()
        r = fn(path, body, format="json")
        samples.append(time.perf_counter() - t0)
    samples.sort()
    return statistics.median(samples) * 1000, samples[int(len(samples) * 0.95) - 1] * 1000, queries


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--history", type=int, default=200)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"bench_{old_name.rsplit('/', 1)[-1]}"
    print(f"database: {connection.vendor}, creating a throwaway test database...", flush=True)
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        from rest_framework.test import APIClient

        t0 = time.perf_counter()
        token, heavy, fresh, agents_pool = seed(args.agents, args.history)
        print(f"seeded {args.agents} agents, one with {args.history} instances/commands and "
              f"{args.history * 10} events, in {time.perf_counter() - t0:.1f}s", flush=True)
        http = APIClient()
        http.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        rows = []
        for label, agent in (("no history", fresh), ("long history", heavy)):
            hb = {"status": "online", "monitored_instances": [], "instance_id": agent.instance_id, "mode": "spot"}
            for name, method, path, body in (
                ("heartbeat", "post", f"/api/agents/{agent.pk}/heartbeat", hb),
                ("config", "get", f"/api/agents/{agent.pk}/config", None),
                ("pending-commands", "get", f"/api/agents/{agent.pk}/pending-commands", None),
                ("register (same instance)", "post", "/api/agents/register",
                 {"instance_id": agent.instance_id, "logical_agent_id": agent.logical_agent_id, "mode": "spot"}),
                # The first post decides (measured once, below); these are the repeats every 5 s.
                ("termination-imminent repeat", "post", f"/api/agents/{agent.pk}/termination-imminent",
                 {"instance_id": agent.instance_id, "termination_time": "2026-11-26T19:25:57Z"}),
            ):
                med, p95, q = measure(http, method, path, body, args.calls)
                rows.append((name, label, med, p95, q))
        first = []
        for n in range(20):  # first notices: one fresh agent each (the decision path)
            a = agents_pool[n]
            t0 = time.perf_counter()
            r = http.post(f"/api/agents/{a.pk}/termination-imminent",
                          {"instance_id": a.instance_id, "termination_time": "2026-11-26T19:25:57Z"}, format="json")
            first.append(time.perf_counter() - t0)
            assert r.status_code == 200 and r.json()["create_emergency_replica"] is True, r.content[:200]
        print(f"termination-imminent first notice (decision, 20 agents): median {statistics.median(first) * 1000:.2f} ms")
        print(f"\n{'call':28} {'agent':14} {'median ms':>10} {'p95 ms':>8} {'queries':>8}")
        for name, label, med, p95, q in rows:
            print(f"{name:28} {label:14} {med:10.2f} {p95:8.2f} {q:8d}")
        print("\nratio long/no history (median):")
        half = len(rows) // 2
        for a, b in zip(rows[:half], rows[half:]):
            print(f"  {a[0]:28} {b[2] / a[2]:.2f}x")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
