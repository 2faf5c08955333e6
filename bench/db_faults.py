"""Database faults, measured on a live server: gunicorn (gunicorn.conf.py: 2 workers x 4 threads, the
default DB_*_TIMEOUTs) talks to MariaDB through a TCP stand-in on a private loopback port that is
switched between up, hung (accepts, never answers) and down (port closed). Each phase sends bursts of
concurrent requests on /health, /api/client/validate (a database route) and a 404, and prints the
status codes and times. Builds and drops its own database (bench_db_faults on 127.0.0.1:3306).
Usage: python bench/db_faults.py [--burst 32] [--bursts 3]"""
import argparse
import collections
import concurrent.futures
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
from spotbackend.tests.faketcp import FakeTCP  # noqa: E402

DB = "bench_db_faults"
ROUTES = [("/health", {}), ("/api/client/validate", {"Authorization": "Bearer sb_not-a-real-token"}),
          ("/no/such/route", {})]


def call(base, path, headers):
    started = time.monotonic()
    try:
        status = requests.get(base + path, headers=headers, timeout=120).status_code
    except requests.RequestException as exc:
        status = type(exc).__name__
    return path, status, (time.monotonic() - started) * 1000


def phase(base, name, burst, bursts):
    results = []
    with concurrent.futures.ThreadPoolExecutor(burst) as pool:
        for _ in range(bursts):
            jobs = [pool.submit(call, base, *ROUTES[i % len(ROUTES)]) for i in range(burst)]
            results += [j.result() for j in jobs]
    by_route = collections.defaultdict(list)
    for path, status, ms in results:
        by_route[path].append((status, ms))
    for path, rows in by_route.items():
        codes = collections.Counter(s for s, _ in rows)
        times = sorted(ms for _, ms in rows)
        print(f"{name:<6} {path:<22} {dict(codes)!s:<16} median {statistics.median(times):7.0f} ms   "
              f"max {times[-1]:7.0f} ms")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst", type=int, default=32)
    parser.add_argument("--bursts", type=int, default=3)
    args = parser.parse_args()
    admin = MySQLdb.connect(host="127.0.0.1", user="root")
    admin.cursor().execute(f"CREATE DATABASE IF NOT EXISTS {DB} CHARACTER SET utf8mb4")
    env = {**os.environ, "DATABASE_URL": f"mysql://root@127.0.0.1:3306/{DB}", "REDIS_URL": "",
           "SPOTBACKEND_VAR_DIR": str(ROOT / "var" / "bench-db-faults")}
    env.pop("TEST_DATABASE_NAME", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    fake = FakeTCP()
    fake.set("up")
    port = FakeTCP().port
    env["DATABASE_URL"] = f"mysql://root@127.0.0.1:{fake.port}/{DB}"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
         "--access-logfile", "/dev/null", "spotbackend.wsgi:application"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                requests.get(base + "/health", timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        print(f"gunicorn.conf.py defaults; bursts of {args.burst} concurrent requests x {args.bursts}")
        phase(base, "up", args.burst, args.bursts)
        fake.set("hung")
        phase(base, "hung", args.burst, args.bursts)
        fake.set("down")
        phase(base, "down", args.burst, args.bursts)
        fake.set("up")
        started = time.monotonic()
        while call(base, "/health", {})[1] != 200:
            time.sleep(0.1)
        print(f"back up: /health answers 200 again after {(time.monotonic() - started) * 1000:.0f} ms")
        phase(base, "up", args.burst, args.bursts)
    finally:
        server.terminate()
        server.wait(timeout=30)
        fake.stop()
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {DB}")


if __name__ == "__main__":
    main()
