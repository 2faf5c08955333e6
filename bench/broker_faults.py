"""Redis and the Celery broker down or hung, measured on a live server (issue 19): gunicorn (gunicorn.conf.py,
one worker so that every notice below meets the same process) with REDIS_URL (cache and broker) pointing
at a TCP stand-in on a private loopback port, hung (accepts, never answers) or down (port closed).
For each fault, and with the notification publisher in the background (the default) or in the
committing thread (NOTIFICATION_PUBLISH_BACKGROUND=false, the behaviour before), it prints the time of
the first termination notices (each one writes a notification to the outbox) and of the probes.
Builds and drops its own database (bench_broker_faults on 127.0.0.1:3306).
Usage: python bench/broker_faults.py [--notices 5]"""
import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import MySQLdb
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from agents.tests.payloads import register_v4  # noqa: E402
from spotbackend.tests.faketcp import FakeTCP  # noqa: E402

DB = "bench_broker_faults"


def timed(fn):
    started = time.perf_counter()
    r = fn()
    return r, (time.perf_counter() - started) * 1000


def run(env, fault, background, notices):
    fake = FakeTCP()
    fake.set(fault)
    port = FakeTCP().port
    env = {**env, "REDIS_URL": f"redis://127.0.0.1:{fake.port}/0", "WEB_CONCURRENCY": "1",
           "NOTIFICATION_PUBLISH_BACKGROUND": "true" if background else "false"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
         "--access-logfile", "/dev/null", "spotbackend.wsgi:application"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                requests.get(base + "/health/live", timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.1)  # polling interval while gunicorn starts
        token = env["BENCH_TOKEN"]
        agents = []
        for i in range(notices):
            instance = f"i-{int(time.time() * 1000) % 10**9:09d}{i:03d}{int(background)}{fault[0]}"
            r = requests.post(f"{base}/api/agents/register", json=register_v4(
                token=token, instance_id=instance, logical_agent_id=instance),
                headers={"Authorization": f"Bearer {token}"}, timeout=30)
            r.raise_for_status()
            agents.append((r.json()["agent_id"], instance))
        times = []
        for agent_id, instance in agents:
            r, ms = timed(lambda: requests.post(
                f"{base}/api/agents/{agent_id}/termination-imminent",
                json={"instance_id": instance, "termination_time": "2025-01-01T00:02:00Z"},
                headers={"Authorization": f"Bearer {token}"}, timeout=60))
            assert r.status_code == 200, r.text
            times.append(ms)
        probes = {}
        for path in ("/health/live", "/health/ready", "/health"):
            results = [timed(lambda: requests.get(base + path, timeout=60)) for _ in range(5)]
            probes[path] = (sorted({r.status_code for r, _ in results}), max(ms for _, ms in results),
                            results[-1][0].json())
        publisher = "background" if background else "in request"
        print(f"redis+broker {fault:<4} publisher {publisher:<10} notices ms: first {times[0]:7.1f}  "
              f"then median {statistics.median(times[1:]) if len(times) > 1 else 0:6.1f}  "
              f"max {max(times):7.1f}")
        for path, (codes, slowest, body) in probes.items():
            parts = {k: v for k, v in body.items() if k in ("redis", "broker", "database", "jobs")}
            print(f"    GET {path:<14} {codes} slowest of 5 {slowest:7.1f} ms  {parts}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        fake.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--notices", type=int, default=5)
    args = parser.parse_args()
    admin = MySQLdb.connect(host="127.0.0.1", user="root")
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {DB}")
    admin.cursor().execute(f"CREATE DATABASE {DB} CHARACTER SET utf8mb4")
    var = ROOT / "var" / "bench-broker-faults"
    env = {**os.environ, "DATABASE_URL": f"mysql://root@127.0.0.1:3306/{DB}", "REDIS_URL": "",
           "SPOTBACKEND_VAR_DIR": str(var), "ALLOWED_HOSTS": "127.0.0.1",
           "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-only-" + "x" * 40,
           "TERMINATION_NOTIFICATION_WEBHOOK": "http://127.0.0.1:9/hook", "HEALTH_CHECK_TIMEOUT": "1"}
    env.pop("TEST_DATABASE_NAME", None)
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        out = subprocess.run([sys.executable, "manage.py", "create_client", "--name", "Bench", "--email",
                              "bench@example.com"], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        env["BENCH_TOKEN"] = out.stdout.strip().splitlines()[-1].split()[-1]
        for fault in ("down", "hung"):
            for background in (True, False):
                run(env, fault, background, args.notices)
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {DB}")


if __name__ == "__main__":
    main()
