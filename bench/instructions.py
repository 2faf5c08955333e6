"""Instructions per agent call, server beside the empty-view ceiling: a measurement that does not move
with the machine's load (docs/PERFORMANCE.md, "Instruction counts").

Each call kind runs in its own process under `valgrind --tool=callgrind`, once with FEW and once with
MANY calls through the WSGI application (Django's full stack, no HTTP server): the difference divided by
MANY - FEW is the cost of one call in the application, start-up excluded. The same two runs go to the
ceiling (bench/ceiling/, the empty DRF view of `make bench`). Gunicorn's share is the same for both
and is not counted here; the load benchmark (bench/load.py) measures the whole.

    python bench/instructions.py                      # every kind, server and ceiling, the mix's ratio
    python bench/instructions.py --ablate json_first  # the server with a mechanism off (bench/ablation.py)
    python bench/instructions.py --kinds heartbeat --targets server
    python bench/instructions.py --redis-down         # the server with REDIS_URL on a closed port
    python bench/instructions.py --targets server,floor,floor-ops,ceiling  # and the floor (bench/ceiling/floor.py)

The server runs its production settings (bench/load.py's) on a throwaway MariaDB database (bench_instructions
on 127.0.0.1:3306) and Redis database (--redis-url). Needs valgrind (Debian: apt-get install valgrind).
"""
import argparse
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from load import MIX, Agent, free_port, fresh_stores, server_env  # the load benchmark's fleet, mix and settings

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
FEW, MANY = 20, 120
# One web process's rate of calls in the virtual clock (about what level a gives each process).
CALLS_PER_SECOND = 100
AGENT = Agent(0)  # t3.medium in us-east-1a, spot: the load benchmark's first agent
WORKDIR = Path(tempfile.gettempdir()) / "bench-instructions"


def env_of(target: str, args) -> dict:
    if target == "server":
        redis_url = f"redis://127.0.0.1:{free_port()}/0" if args.redis_down else args.redis_url
        env = server_env(db=args.db, redis_url=redis_url, workdir=WORKDIR, name="instructions")
        return dict(env, PYTHONPATH=f"{ROOT}{os.pathsep}{BENCH}")
    if target in ("floor", "floor-ops"):  # bench/ceiling/floor.py: the ceiling plus what the rules require
        return dict(os.environ, DJANGO_SETTINGS_MODULE="ceiling.floor_settings", PYTHONPATH=f"{BENCH}{os.pathsep}{ROOT}",
                    FLOOR_REDIS_URL=args.redis_url, FLOOR_OPS="1" if target == "floor-ops" else "0")
    return dict(os.environ, DJANGO_SETTINGS_MODULE="ceiling.settings", PYTHONPATH=str(BENCH))


# --- the child: one target, one kind, n calls ------------------------------------------------------

def wsgi_call(application, method: str, path: str, token: str, body: dict | None = None) -> tuple[str, bytes]:
    """What gunicorn hands the application for an agent's call (python-requests' headers)."""
    payload = json.dumps(body).encode() if body is not None else b""
    path, _, query = path.partition("?")
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "5000", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(payload), "wsgi.errors": sys.stderr, "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:5000", "HTTP_USER_AGENT": "python-requests/2.31.0", "HTTP_ACCEPT": "*/*",
        "HTTP_ACCEPT_ENCODING": "gzip, deflate", "HTTP_AUTHORIZATION": f"Bearer {token}",
        "CONTENT_TYPE": "application/json",
    }
    if body is not None:
        environ["CONTENT_LENGTH"] = str(len(payload))
    status = []
    answer = application(environ, lambda s, headers, exc_info=None: status.append(s))
    data = b"".join(answer)
    getattr(answer, "close", lambda: None)()
    return status[0], data


def calls(agent_id: str, rng: random.Random) -> dict:
    base = f"/api/agents/{agent_id}"
    return {
        "heartbeat": lambda: ("POST", f"{base}/heartbeat", AGENT.heartbeat_body()),
        "pending-commands": lambda: ("GET", f"{base}/pending-commands?instance_id={AGENT.instance_id}", None),
        "config": lambda: ("GET", f"{base}/config", None),
        "pricing-report": lambda: ("POST", f"{base}/pricing-report", AGENT.pricing_body(rng)),
    }


def child(target: str, kind: str, n: int, fleet_file: str) -> None:
    done = 0
    import django

    django.setup()
    if target == "server":
        from ablation import application  # the server's WSGI entry, with ABLATE's mechanisms off
    else:
        from ceiling.wsgi import application
    flush = lambda: None  # noqa: E731
    if target == "server":
        # Valgrind runs the calls ~50 times slower: what expires or flushes with time (the token cache,
        # the heartbeat buffer) follows a virtual clock of CALLS_PER_SECOND instead of the wall clock.
        from django.conf import settings

        from agents.services.heartbeats import heartbeats_flush
        from clients import services

        services.clock = lambda: done / CALLS_PER_SECOND
        if settings.HEARTBEAT_BUFFER_SECONDS:  # (0: switched off by --ablate heartbeat_buffer)
            settings.HEARTBEAT_BUFFER_SECONDS = 10**6  # the buffer's own thread sleeps; flushed below instead
        flush = heartbeats_flush
    token, agent_id = json.loads(Path(fleet_file).read_text()) if target == "server" else ("x", "x")
    call = calls(agent_id, random.Random(7))[kind]
    for done in range(n + 5):  # the first calls fill the caches; warm-up counts in both runs alike
        method, path, body = call()
        status, data = wsgi_call(application, method, path, token, body)
        if not status.startswith("200"):
            raise SystemExit(f"{target} {kind}: {status} {data[:300]!r}")
        if done % (2 * CALLS_PER_SECOND) == 0:
            flush()


# --- the parent ------------------------------------------------------------------------------------

def setup(fleet_file: str) -> None:
    """One client and one agent registered through the API; their token and agent id to `fleet_file`."""
    import django

    django.setup()
    from clients.services import client_create
    from spotbackend.wsgi import application

    _, token = client_create(name="Bench", email="bench@example.com")
    status, data = wsgi_call(application, "POST", "/api/agents/register", token, AGENT.register_body(token))
    if not status.startswith("200"):
        raise SystemExit(f"register: {status} {data[:300]!r}")
    Path(fleet_file).write_text(json.dumps([token, json.loads(data)["agent_id"]]))


def fleet_create(args) -> str:
    """A fresh database and Redis database with one client and one registered agent."""
    fresh_stores(db=args.db, redis_url=args.redis_url)
    env = env_of("server", args)
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], env=env, check=True)
    fleet_file = str(WORKDIR / "fleet.json")
    WORKDIR.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, __file__, "--setup", fleet_file], env=env, check=True)
    return fleet_file


def instructions(target: str, kind: str, n: int, fleet_file: str, args) -> int:
    env = env_of(target, args)
    env.update(ABLATE=args.ablate, PYTHONHASHSEED="0")  # the same dict and set layouts in every run
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out", sys.executable, __file__,
             "--child", target, kind, str(n), fleet_file], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{target} {kind} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", default=",".join(k for k, _ in MIX))
    parser.add_argument("--targets", default="server,ceiling")
    parser.add_argument("--ablate", default="", help="mechanisms switched off in the server (bench/ablation.py)")
    parser.add_argument("--db", default="bench_instructions")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6"))
    parser.add_argument("--redis-down", action="store_true",
                        help="the server's calls run with REDIS_URL on a closed port (Redis out); the setup has Redis")
    parser.add_argument("--jobs", type=int, default=2, help="valgrind runs at once (counts do not depend on it)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--setup", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup:
        return setup(args.setup)
    if args.child:
        target, kind, n, fleet_file = args.child
        return child(target, kind, int(n), fleet_file)
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is needed (Debian: apt-get install valgrind)")
    kinds = [k for k in args.kinds.split(",") if k]
    targets = [t for t in args.targets.split(",") if t]
    fleet_file = fleet_create(args) if "server" in targets else ""  # (with Redis: fresh_stores flushes it)
    print(f"instructions per call (callgrind, {MANY} minus {FEW} calls through the WSGI application)"
          + (f"; server with {args.ablate} off" if args.ablate else "")
          + ("; server with Redis unreachable" if args.redis_down else ""), flush=True)
    jobs = [(t, k, n) for t in targets for k in kinds for n in (FEW, MANY)]
    with ThreadPoolExecutor(args.jobs) as pool:
        counts = dict(zip(jobs, pool.map(lambda j: instructions(*j, fleet_file, args), jobs)))
    per_call = {(t, k): (counts[t, k, MANY] - counts[t, k, FEW]) / (MANY - FEW) for t in targets for k in kinds}
    base = "ceiling" if "ceiling" in targets and len(targets) > 1 else None  # ratios to the ceiling
    ratios = [t for t in targets if t != base] if base else []
    print(f"  {'call':18s}" + "".join(f"{t:>14s}" for t in targets) + "".join(f"{t[:10]:>12s}/c" for t in ratios))
    weight = sum(w for _, w in MIX)
    rows = [(k, {t: per_call[t, k] for t in targets}) for k in kinds]
    if set(kinds) == {k for k, _ in MIX}:
        rows.append(("mix (load.py)", {t: sum(per_call[t, k] * w for k, w in MIX) / weight for t in targets}))
    for name, row in rows:
        print(f"  {name:18s}" + "".join(f"{row[t] / 1e6:12.2f} M" for t in targets)
              + "".join(f"{row[t] / row[base]:13.2f}x" for t in ratios))


if __name__ == "__main__":
    main()
