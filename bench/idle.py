"""Idle cost at fleet scale (issue 8 item 5): CPU used by the server when nobody calls it.

Target: an idle server with 10,000 registered agents and no traffic uses under 2 % of one core (web,
worker and beat together).

One run:
  1. creates a throwaway MariaDB database (`--db-name`, dropped first if it exists and again at the end),
     runs `migrate` as a deploy does (which also writes the scheduled jobs into django-celery-beat's
     tables), and seeds it with bench/jobs.py's generator at a small history: 1,000 clients, 10,000
     agents, 5,000 spot pools (`--spot-hours` of samples, `--days` of on-demand and instance history);
  2. flushes the Redis database of `--redis-url` (the bench owns it) and starts, each in its own process
     group, with production settings (DEBUG=false, a SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL, REDIS_URL):
     gunicorn (`-c gunicorn.conf.py spotbackend.wsgi:application --worker-class gthread --workers 4
     --threads 2`, as bench/load.py), a Celery worker (`celery -A spotbackend worker --loglevel INFO`) and
     beat (`celery -A spotbackend beat --scheduler django_celery_beat.schedulers:DatabaseScheduler`), two
     processes as docs/OPERATIONS.md and docker-compose.yml run them, so that each is measured apart;
  3. waits until the server answers and then `--settle` seconds (imports, first beat ticks), sends no
     request at all, and reads the CPU seconds (user + system, from /proc) of every process it started
     over `--duration` seconds; MariaDB and Redis are read too but reported apart (they are shared with
     whatever else runs on the machine);
  4. prints, per process group and per process, the share of one core, the total against the 2 % target
     and the tasks the worker ran meanwhile (from its log), then stops everything it started by process
     group (also on Ctrl-C, SIGTERM or an error), flushes its Redis database and drops the database.

It exits non-zero only when something crashes, never because the target is missed.

    python bench/idle.py [--duration 120] [--settle 30] [--db-name bench_idle] [--redis-url redis://127.0.0.1:6379/6]
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from load import (  # noqa: E402
    GUNICORN_ARGS,
    GUNICORN_CONF,
    HOST,
    Stack,
    free_port,
    fresh_stores,
    mysql,
    proc_stats,
    server_env,
    shared_service,
    wait_ready,
)

TARGET = 2.0  # % of one core, web + worker + beat
# The worker and beat as production runs them (docs/OPERATIONS.md, docker-compose.yml).
CELERY_WORKER_ARGS = ["worker", "--loglevel", "INFO"]
CELERY_BEAT_ARGS = ["beat", "--loglevel", "INFO", "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"]


def processes(groups: dict[str, int]) -> dict[int, dict]:
    """Every live process of the started groups (pid -> group, parent, CPU seconds so far), and
    MariaDB and Redis (shared: reported apart)."""
    by_pgid = {pgid: name for name, pgid in groups.items()}
    out = {}
    for pid, comm, ppid, pgid, cpu in proc_stats():
        shared = shared_service(comm)
        group = by_pgid.get(pgid) or (f"{shared} (shared)" if shared else None)
        if group:
            out[pid] = {"group": group, "ppid": ppid, "cpu": cpu}
    return out


ROLES = {"web": ("gunicorn arbiter", "gunicorn worker"), "worker": ("worker: consumer, timers", "worker: pool process"),
         "beat": ("beat", "beat child")}


def role(group: str, pid: int, leaders: set[int]) -> str:
    main, child = ROLES.get(group, ("main", "child"))
    return main if pid in leaders else child


def seed(db: str, args) -> dict:
    """bench/jobs.py's generator on the throwaway database (already migrated)."""
    os.environ["DATABASE_URL"] = f"mysql://root@{HOST}:3306/{db}"
    import jobs  # django.setup() on DATABASE_URL

    from django.db import connection

    now = datetime.now(timezone.utc)
    spec = SimpleNamespace(clients=args.clients, agents_per_client=args.agents_per_client, pools=args.pools,
                           types=250, spot_hours=args.spot_hours, days=args.days)
    counts = jobs.seed(spec, now)
    connection.close()
    return counts


def worker_tasks(log: Path, since: float, until: float) -> Counter:
    """Tasks the worker finished within [since, until] (wall clock), from its INFO log."""
    done = Counter()
    pattern = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+: INFO/[^\]]*\] Task (\S+)\[[^\]]+\] succeeded")
    for line in log.read_text(errors="replace").splitlines():
        m = pattern.match(line)
        if not m:
            continue
        at = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
        if since - 1 <= at <= until + 1:
            done[m.group(2)] += 1
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds measured (default 120)")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds after start-up before measuring")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--agents-per-client", type=int, default=10)
    parser.add_argument("--pools", type=int, default=5000)
    parser.add_argument("--spot-hours", type=int, default=1, help="hours of 5-minute spot samples per pool")
    parser.add_argument("--days", type=int, default=2, help="days of on-demand quotes and instance history")
    parser.add_argument("--db-name", default="bench_idle", help="throwaway database (dropped if it exists)")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_IDLE_REDIS_URL", "redis://127.0.0.1:6379/6"),
                        help="Redis database owned by the bench: flushed at the start and the end")
    parser.add_argument("--celery-args", default="",
                        help="extra flags for the Celery worker, e.g. '--without-gossip' (to compare)")
    args = parser.parse_args()

    def on_signal(signum, frame):
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    venv_bin = Path(sys.executable).parent
    workdir = ROOT / "var" / "bench-idle" / f"{datetime.now():%Y%m%d-%H%M%S}-{args.db_name}"
    workdir.mkdir(parents=True, exist_ok=True)
    stack = Stack(workdir)
    db = args.db_name
    db_created = False
    redis_client = None
    try:
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start", flush=True)
        redis_client = fresh_stores(db=db, redis_url=args.redis_url)
        db_created = True
        env = server_env(db=db, redis_url=args.redis_url, workdir=workdir, name="idle")
        t0 = time.monotonic()
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        counts = seed(db, args)
        print(f"database {db} migrated and seeded ({time.monotonic() - t0:.0f}s): "
              + ", ".join(f"{k}={v}" for k, v in counts.items() if k != "seconds"), flush=True)

        port = free_port()
        gunicorn_args = (["-c", str(GUNICORN_CONF)] if GUNICORN_CONF.exists() else []) + GUNICORN_ARGS
        stack.start("web", [str(venv_bin / "gunicorn"), "spotbackend.wsgi:application", "--bind", f"{HOST}:{port}",
                            *gunicorn_args], env, ROOT)
        worker_argv = [str(venv_bin / "celery"), "-A", "spotbackend", *CELERY_WORKER_ARGS, *args.celery_args.split()]
        stack.start("worker", worker_argv, env, ROOT)
        beat_argv = [str(venv_bin / "celery"), "-A", "spotbackend", *CELERY_BEAT_ARGS, "--schedule",
                     str(workdir / "celerybeat-schedule")]
        stack.start("beat", beat_argv, env, ROOT)
        wait_ready(port, stack)  # one GET /health, then no request at all
        print(f"web on :{port} (gunicorn gthread 4x2); {' '.join(worker_argv[1:])}; {' '.join(beat_argv[1:4])} ...; "
              f"logs in {workdir}; settling {args.settle:.0f}s", flush=True)
        time.sleep(args.settle)
        stack.check_alive()

        groups = {name: proc.pid for name, proc, _ in stack.procs}
        before, t_start, wall_start = processes(groups), time.monotonic(), time.time()
        time.sleep(args.duration)
        after, elapsed, wall_end = processes(groups), time.monotonic() - t_start, time.time()
        stack.check_alive()

        share = {}  # pid -> % of one core
        for pid, p in after.items():
            share[pid] = 100 * (p["cpu"] - before.get(pid, {"cpu": 0.0})["cpu"]) / elapsed
        per_group = Counter()
        for pid, p in after.items():
            per_group[p["group"]] += share[pid]
        leaders = set(groups.values())
        load = os.getloadavg()[0]
        print(f"\nidle for {elapsed:.0f}s (no request), load average {load:.1f} at the end\n")
        print(f"{'process':60} {'% of one core':>14}")
        for group in list(groups) + ["mariadb (shared)", "redis (shared)"]:
            print(f"{group:60} {per_group[group]:13.2f} %")
            for pid in sorted(p for p in after if after[p]["group"] == group and group in groups):
                print(f"{'  pid ' + str(pid) + ' ' + role(group, pid, leaders):60} {share[pid]:13.2f} %")
        total = sum(per_group[g] for g in groups)
        verdict = "under" if total < TARGET else "OVER"
        print(f"\n{'web + worker + beat':60} {total:13.2f} %   ({verdict} the {TARGET:.0f} % target)")
        tasks = worker_tasks(stack.procs[1][2], wall_start, wall_end)
        print("tasks run meanwhile: " + (", ".join(f"{n} x {t}" for t, n in sorted(tasks.items())) or "none"))
        print("(MariaDB and Redis are shared with everything else on the machine: their figures include other users.)")
        return 0
    finally:
        stack.stop()
        if redis_client is not None:
            try:
                redis_client.flushdb()
            except Exception as e:  # noqa: BLE001
                print(f"warning: could not flush {args.redis_url}: {e}", file=sys.stderr)
        if db_created:
            mysql(f"DROP DATABASE IF EXISTS `{db}`")


if __name__ == "__main__":
    sys.exit(main())
