"""Load benchmark of the agent fleet against the real server and, side by side, the empty-view ceiling.

`make bench` runs this. In one run it starts
  - the server: gunicorn `spotbackend.wsgi` with production settings on a throwaway MariaDB database
    (created, migrated, dropped at the end) and Redis, plus a Celery worker with beat (write-behind
    and scheduled jobs run during the load, as in production);
  - the ceiling: `bench/ceiling/`, the same Django and DRF, one APIView that parses the body and
    answers {"success": true}, no database, no authentication, the same gunicorn settings;
then registers N agents through the real API with real v4 payloads, posts a pricing report for
each, and replays the agent mix (per agent-minute: 2 heartbeats, 4 pending-commands polls, 1 config
read, 0.2 pricing reports; a new TCP connection per call) against both targets with the same
request sequence. Levels (docs/PERFORMANCE.md):
  a  2,000 agents, closed loop, 16 connections       (maximum throughput)
  b  2,000 agents, open loop at 600 req/s offered    (does it keep up, and at what p99)
  c  200 agents, open loop at 240 req/s              (latency at moderate load)
  burst  500 termination notices from 500 agents within 5 s during the load of level a; p99 of
         the notices and, in the database, exactly one decision per agent.
Prints per target and endpoint: req/s, p50/p95/p99, non-2xx and transport errors (medians of the
rounds; counts summed), then the ratios server/ceiling. Exits non-zero only on a crash.

Every process it starts is stopped at the end by its process group, also on Ctrl-C or an error.
Everything runs on 127.0.0.1.

    python bench/load.py [--quick] [--rounds 3] [--duration 15] [--warmup 60] [--levels a,b,c] [--no-burst]
                         [--via-nginx]

--via-nginx puts a private nginx with the production proxy settings (deploy/nginx/, generated config on
a free loopback port, its own prefix, stopped by PID) in front of each target, ceiling and server alike:
the load then measures what agents see behind the proxy (docs/OPERATIONS.md, "The proxy").
"""
import argparse
import array
import asyncio
import errno
import json
import math
import multiprocessing
import os
import random
import resource
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
# Both targets run the same workers: plain gthread 4x2 by default, `--workers shipped` for
# gunicorn.conf.py's own (what production runs), or `--workers sync:5`, `--workers gthread:2x4`.
DEFAULT_WORKERS = "gthread:4x2"
GUNICORN_ARGS = ["--no-control-socket", "--log-level", "warning",
                 # gunicorn's default access line plus the time the worker spent on the request, in ms
                 # (after reading it: queueing is not in it), to tell a slow answer from a long wait.
                 "--access-logformat", '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)s']
# The project's gunicorn settings (request limits, timeouts, access log) apply to both targets alike;
# the flags above override its workers and threads.
GUNICORN_CONF = ROOT / "gunicorn.conf.py"
# Per agent-minute with the agent's default intervals (docs/API.md §1): 30 s, 15 s, 60 s, 300 s.
MIX = (("heartbeat", 2.0), ("pending-commands", 4.0), ("config", 1.0), ("pricing-report", 0.2))
ENDPOINTS = [name for name, _ in MIX]
NOTICE = "termination-imminent"
REQUEST_TIMEOUT = 10.0
# Open loop: requests in flight beyond this are not sent (counted as dropped: the target fell behind).
INFLIGHT_CAP = 2000

LEVELS = {
    "a": dict(agents=2000, mode="closed", connections=16, title="2,000 agents, closed loop, 16 connections"),
    "b": dict(agents=2000, mode="open", rate=600, title="2,000 agents, open loop at 600 req/s offered"),
    "c": dict(agents=200, mode="open", rate=240, title="200 agents, open loop at 240 req/s offered"),
}

REGIONS = {"us-east-1": "abcdef", "eu-west-1": "abc"}
TYPES = {  # on-demand price, typical spot price
    "t3.medium": (0.0416, 0.0125), "t3.large": (0.0832, 0.0251), "m5.large": (0.096, 0.0372),
    "c5.large": (0.085, 0.0318), "r5.large": (0.126, 0.0401),
}


# --------------------------------------------------------------------------------------------------
# The fleet and its requests


class Agent:
    __slots__ = ("index", "logical_id", "instance_id", "instance_type", "region", "az", "mode", "agent_id",
                 "requests")

    def __init__(self, index: int):
        self.index = index
        self.logical_id = f"bench-{index:05d}"
        self.instance_id = f"i-{0x0b0000000 + index:017x}"
        self.instance_type = list(TYPES)[index % len(TYPES)]
        self.region = "eu-west-1" if index % 3 == 2 else "us-east-1"
        letters = REGIONS[self.region]
        self.az = f"{self.region}{letters[(index // len(TYPES)) % len(letters)]}"
        self.mode = "ondemand" if index % 10 == 9 else "spot"
        self.agent_id = ""
        self.requests = {}

    def register_body(self, token: str) -> dict:
        return {
            "client_token": token, "hostname": f"ip-10-0-{self.index // 250}-{self.index % 250}",
            "instance_id": self.instance_id, "instance_type": self.instance_type, "region": self.region,
            "az": self.az, "ami_id": "ami-0abc1234", "agent_version": "4.0.0", "logical_agent_id": self.logical_id,
            "mode": self.mode, "private_ip": f"10.0.{self.index // 250}.{self.index % 250}", "public_ip": None,
        }

    def heartbeat_body(self) -> dict:
        return {"status": "online", "monitored_instances": [self.instance_id], "instance_id": self.instance_id,
                "instance_type": self.instance_type, "mode": self.mode, "az": self.az}

    def pricing_body(self, rng: random.Random) -> dict:
        """A v4 report: every pool of the type in the region, in a random order (as agents in one region
        report the same pools in different orders), prices jittered, collected now."""
        ondemand, spot = TYPES[self.instance_type]
        pools = []
        for k, letter in enumerate(REGIONS[self.region]):
            az = f"{self.region}{letter}"
            price = round(spot * (1 + 0.04 * k) * rng.uniform(0.97, 1.03), 6)
            pools.append({"pool_id": f"{self.instance_type}.{az}", "instance_type": self.instance_type, "az": az,
                          "price": price})
        rng.shuffle(pools)
        cheapest = min(pools, key=lambda p: p["price"])
        own = f"{self.instance_type}.{self.az}"
        spot_mode = self.mode == "spot"
        return {
            "instance": {"instance_id": self.instance_id, "instance_type": self.instance_type, "region": self.region,
                         "az": self.az, "mode": self.mode, "pool_id": own if spot_mode else None},
            "pricing": {
                "on_demand_price": ondemand,
                "current_spot_price": next(p["price"] for p in pools if p["pool_id"] == own) if spot_mode else None,
                "cheapest_pool": {"pool_id": cheapest["pool_id"], "price": cheapest["price"]} if spot_mode else None,
                "spot_pools": pools,
                "collected_at": datetime.now(timezone.utc).replace(tzinfo=None).isoformat(),
            },
        }

    def notice_body(self) -> dict:
        now = datetime.now(timezone.utc)
        return {"instance_id": self.instance_id,
                "termination_time": (now + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "detected_at": now.replace(tzinfo=None).isoformat()}


def http_request(method: str, path: str, port: int, token: str, body: dict | None = None) -> bytes:
    """What python-requests sends from an agent, but with a new connection per call (Connection: close)."""
    payload = json.dumps(body, separators=(", ", ": ")).encode() if body is not None else b""
    head = (f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUser-Agent: python-requests/2.31.0\r\n"
            f"Accept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: close\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n")
    if body is not None:
        head += f"Content-Length: {len(payload)}\r\n"
    return head.encode() + b"\r\n" + payload


def prepare_requests(agents: list, port: int, token: str) -> None:
    """The fixed requests of each agent for one target, built once (only pricing reports change)."""
    for a in agents:
        base = f"/api/agents/{a.agent_id}"
        a.requests[port] = {
            "heartbeat": http_request("POST", f"{base}/heartbeat", port, token, a.heartbeat_body()),
            "pending-commands": http_request("GET", f"{base}/pending-commands?instance_id={a.instance_id}", port,
                                             token),
            "config": http_request("GET", f"{base}/config", port, token),
        }


def build_request(agent: Agent, kind: str, port: int, token: str, rng: random.Random) -> bytes:
    if kind == "pricing-report":
        return http_request("POST", f"/api/agents/{agent.agent_id}/pricing-report", port, token,
                            agent.pricing_body(rng))
    if kind == NOTICE:
        return http_request("POST", f"/api/agents/{agent.agent_id}/termination-imminent", port, token,
                            agent.notice_body())
    return agent.requests[port][kind]


def mix_picker(rng: random.Random):
    total = sum(w for _, w in MIX)

    def pick() -> str:
        x = rng.random() * total
        for name, w in MIX:
            if x < w:
                return name
            x -= w
        return MIX[-1][0]

    return pick


# --------------------------------------------------------------------------------------------------
# A minimal HTTP/1.1 client on asyncio, for the setup (registration, first reports) and the probes.
# The load itself goes through `Phase` below, which is cheaper per call.


class _Call(asyncio.Protocol):
    __slots__ = ("request", "future", "buf", "header_end", "length", "transport")

    def __init__(self, request: bytes, future: asyncio.Future):
        self.request = request
        self.future = future
        self.buf = b""
        self.header_end = -1
        self.length = -1
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data):
        self.buf += data
        if self.header_end < 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self.header_end = end + 4
            for line in self.buf[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    self.length = int(value)
        if self.length >= 0 and len(self.buf) - self.header_end >= self.length and not self.future.done():
            self.future.set_result(self.buf)
            self.transport.close()

    def connection_lost(self, exc):
        if not self.future.done():
            if self.header_end >= 0 and self.length < 0:
                self.future.set_result(self.buf)  # no Content-Length: the body ends with the connection
            else:
                self.future.set_exception(exc or ConnectionError("connection closed before the full answer"))


async def http_call(port: int, request: bytes, timeout: float = REQUEST_TIMEOUT) -> tuple[int, bytes]:
    """(status, body) or (-1, error name) on a transport error or timeout."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    transport = None
    try:
        async with asyncio.timeout(timeout):
            transport, _ = await loop.create_connection(lambda: _Call(request, future), HOST, port)
            raw = await future
    except (OSError, TimeoutError, ConnectionError, ValueError) as exc:
        return -1, type(exc).__name__.encode()
    finally:
        if transport is not None:
            transport.close()
    try:
        status = int(raw[9:12])
    except ValueError:
        return -1, b"BadStatusLine"
    return status, raw[raw.find(b"\r\n\r\n") + 4:]


# --------------------------------------------------------------------------------------------------
# One load phase in one generator process


class Recorder:
    def __init__(self):
        self.lat = {}  # endpoint -> array of ms
        self.done_at = {}  # endpoint -> array of completion times (monotonic)
        self.statuses = {}  # (endpoint, status) -> count
        self.errors = {}  # (endpoint, error) -> count
        self.notices = []  # (agent index, status, create_emergency_replica)

    def add(self, endpoint: str, status: int, body: bytes, started: float, done: float):
        if status < 0:
            key = (endpoint, body.decode())
            self.errors[key] = self.errors.get(key, 0) + 1
            return
        self.statuses[(endpoint, status)] = self.statuses.get((endpoint, status), 0) + 1
        self.lat.setdefault(endpoint, array.array("d")).append((done - started) * 1000)
        self.done_at.setdefault(endpoint, array.array("d")).append(done)


def run_phase(spec: dict, agents: list, conn) -> None:
    """Child process entry: run one phase and send the raw samples back."""
    try:
        result = Phase(spec, agents).run()
    except BaseException as exc:  # report, do not hang the parent
        result = {"crash": f"{type(exc).__name__}: {exc}"}
    conn.send(result)
    conn.close()


class _Conn:
    __slots__ = ("sock", "kind", "agent", "out", "buf", "started", "header_end", "length", "answered")


class Phase:
    """One generator process: non-blocking sockets on epoll, no framework, so that the generator costs
    a few tens of microseconds per call (it shares the two cores with everything it measures).

    Closed loop: `connections` calls in flight, the next one starts when one is answered.
    Open loop: calls start at their scheduled time whatever the answers; latency counts from the
    scheduled time (no coordinated omission)."""

    def __init__(self, spec: dict, agents: list):
        self.spec = spec
        self.agents = agents
        self.addr = (HOST, spec["port"])
        self.rng = random.Random(spec["seed"] * 1000 + spec["proc"])
        self.pick = mix_picker(self.rng)
        self.sel = selectors.DefaultSelector()
        self.inflight = {}  # fd -> _Conn
        self.rec = Recorder()
        self.lags = array.array("d")
        self.dropped = 0
        self.refill = 0  # closed loop: calls to start at the next turn of the loop
        self.t_start = spec["t_start"]
        self.t_end = spec["t_start"] + spec["duration"]

    # -- one call
    def start(self, kind: str, agent, started: float) -> None:
        c = _Conn()
        c.kind, c.agent, c.started, c.buf, c.header_end, c.length = kind, agent, started, b"", -1, -1
        c.answered = False
        c.out = build_request(agent, kind, self.spec["port"], self.spec["token"], self.rng)
        c.sock = sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        err = sock.connect_ex(self.addr)
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            self.finish_error(c, errno.errorcode.get(err, str(err)))
            return
        self.inflight[sock.fileno()] = c
        # On loopback the handshake is usually done already: try to send at once.
        try:
            n = sock.send(c.out)
            c.out = c.out[n:]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            if exc.errno not in (errno.ENOTCONN, errno.EAGAIN):
                self.fail(c, errno.errorcode.get(exc.errno, "OSError"), registered=False)
                return
        self.sel.register(sock, selectors.EVENT_READ if not c.out else selectors.EVENT_WRITE, c)

    def on_write(self, c: _Conn) -> None:
        err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.fail(c, errno.errorcode.get(err, str(err)))
            return
        try:
            n = c.sock.send(c.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.fail(c, errno.errorcode.get(exc.errno, "OSError"))
            return
        c.out = c.out[n:]
        if not c.out:
            self.sel.modify(c.sock, selectors.EVENT_READ, c)

    def on_read(self, c: _Conn) -> None:
        try:
            data = c.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.fail(c, errno.errorcode.get(exc.errno, "OSError"))
            return
        if c.answered:
            if not data:
                self.close(c)
            return
        if not data:
            if c.header_end >= 0 and c.length < 0:
                self.done(c)  # no Content-Length: the body ends with the connection
                self.close(c)
            else:
                self.fail(c, "closed before the full answer")
            return
        c.buf += data
        if c.header_end < 0:
            end = c.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            c.header_end = end + 4
            for line in c.buf[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    c.length = int(value)
        if c.length >= 0 and len(c.buf) - c.header_end >= c.length:
            self.done(c)

    def close(self, c: _Conn, registered: bool = True) -> None:
        self.inflight.pop(c.sock.fileno(), None)
        if registered:
            self.sel.unregister(c.sock)
        c.sock.close()

    def done(self, c: _Conn) -> None:
        # Answered; the socket stays open until the server's FIN (the server closes first, as on a
        # `Connection: close` call through a proxy; closing first costs this process ~100 us a call).
        c.answered = True
        now = time.monotonic()
        try:
            status = int(c.buf[9:12])
        except ValueError:
            self.finish_error(c, "bad status line")
            return
        body = c.buf[c.header_end:]
        self.rec.add(c.kind, status, body, c.started, now)
        if c.kind == NOTICE:
            flag = None
            if status == 200:
                try:
                    flag = json.loads(body).get("create_emergency_replica")
                except ValueError:
                    flag = "unparsable"
            self.rec.notices.append((c.agent.index, status, flag))
        self.next_closed(c)

    def fail(self, c: _Conn, why: str, registered: bool = True) -> None:
        self.close(c, registered)
        self.finish_error(c, why)

    def finish_error(self, c: _Conn, why: str) -> None:
        self.rec.add(c.kind, -1, why.encode(), c.started, time.monotonic())
        if c.kind == NOTICE:
            self.rec.notices.append((c.agent.index, -1, None))
        self.next_closed(c)

    def next_closed(self, c: _Conn) -> None:
        # Started by the main loop (not from here), so that a refused connection cannot recurse.
        if self.spec["mode"] == "closed" and c.kind != NOTICE:
            self.refill += 1

    # -- the schedule
    def schedule(self):
        """(time, kind, agent) of every scheduled call of this process, in time order."""
        spec, proc, procs = self.spec, self.spec["proc"], self.spec["procs"]
        calls = []
        if spec["mode"] == "open":
            rate = spec["rate"]
            i = proc
            while self.t_start + i / rate < self.t_end:
                calls.append((self.t_start + i / rate, self.pick(), self.agents[self.rng.randrange(len(self.agents))]))
                i += procs
        burst = spec.get("burst_agents") or []
        b0 = self.t_start + spec.get("burst_at", 0)
        for j, agent in enumerate(burst):
            if j % procs == proc:  # the notices spread evenly over the window, split between processes
                calls.append((b0 + spec["burst_window"] * j / len(burst), NOTICE, agent))
        calls.sort(key=lambda x: x[0])
        return calls

    def run(self) -> dict:
        calls = self.schedule()  # built before the start, so the hot loop only sends
        cpu0 = time.process_time()
        timeout = REQUEST_TIMEOUT
        while time.monotonic() < self.t_start:
            time.sleep(min(0.05, max(0.0, self.t_start - time.monotonic())))
        self.refill = self.spec["connections"] if self.spec["mode"] == "closed" else 0
        k = 0
        next_sweep = time.monotonic() + 0.1
        hard_stop = self.t_end + timeout + 5
        while True:
            now = time.monotonic()
            while k < len(calls) and calls[k][0] <= now:
                at, kind, agent = calls[k]
                k += 1
                if len(self.inflight) >= self.spec["cap"] and kind != NOTICE:
                    self.dropped += 1
                    continue
                self.lags.append((now - at) * 1000)
                self.start(kind, agent, at)  # latency from the intended start
            if now >= self.t_end:
                self.refill = 0
            for _ in range(min(self.refill, self.spec.get("connections", 0))):
                self.refill -= 1
                self.start(self.pick(), self.agents[self.rng.randrange(len(self.agents))], now)
            if k >= len(calls) and not self.inflight and (self.spec["mode"] == "open" or now >= self.t_end):
                break
            if now > hard_stop:
                for c in list(self.inflight.values()):
                    if c.answered:
                        self.close(c)
                    else:
                        self.fail(c, "TimeoutError")
                break
            wait = 0.1 if k >= len(calls) else max(0.0, min(0.1, calls[k][0] - now))
            if self.refill:
                wait = 0.0
            for key, events in self.sel.select(wait):
                c = key.data
                if c.sock.fileno() not in self.inflight:
                    continue
                if events & selectors.EVENT_WRITE:
                    self.on_write(c)
                else:
                    self.on_read(c)
            now = time.monotonic()
            if now >= next_sweep:
                next_sweep = now + 0.1
                for c in [c for c in self.inflight.values() if now - c.started > timeout]:
                    if c.answered:
                        self.close(c)
                    else:
                        self.fail(c, "TimeoutError")
        self.sel.close()
        rec = self.rec
        return {"lat": rec.lat, "done_at": rec.done_at, "statuses": rec.statuses, "errors": rec.errors,
                "notices": rec.notices, "lags": self.lags, "dropped": self.dropped,
                "cpu": time.process_time() - cpu0, "t_start": self.t_start, "t_end": self.t_end}


def run_parallel(spec: dict, agents: list, procs: int) -> list[dict]:
    """Run one phase in `procs` generator processes (they start together) and collect their samples."""
    ctx = multiprocessing.get_context("fork")
    children = []
    spec = dict(spec, procs=procs, t_start=time.monotonic() + 0.3)
    try:
        for p in range(procs):
            parent_end, child_end = ctx.Pipe(duplex=False)
            sub = dict(spec, proc=p)
            if spec.get("connections"):
                sub["connections"] = spec["connections"] // procs + (1 if p < spec["connections"] % procs else 0)
            sub["cap"] = max(1, INFLIGHT_CAP // procs)
            proc = ctx.Process(target=run_phase, args=(sub, agents, child_end), daemon=True)
            proc.start()
            child_end.close()
            children.append((proc, parent_end))
        results = []
        deadline = time.monotonic() + spec["duration"] + REQUEST_TIMEOUT + 30
        for proc, pipe in children:
            if not pipe.poll(max(0.1, deadline - time.monotonic())):
                raise RuntimeError("a load generator process did not finish in time")
            result = pipe.recv()
            if "crash" in result:
                raise RuntimeError(f"load generator crashed: {result['crash']}")
            results.append(result)
        return results
    finally:
        for proc, _ in children:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)


# --------------------------------------------------------------------------------------------------
# Statistics


def pct(sorted_values, p: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[max(0, math.ceil(p * len(sorted_values)) - 1)]


def summarize(results: list[dict], spec: dict) -> dict:
    """One phase: per endpoint (and "all"): ok/s, p50/p95/p99, non-2xx, transport errors."""
    t_start = results[0]["t_start"]
    t_end = results[0]["t_end"]
    per = {}
    endpoints = ENDPOINTS + ([NOTICE] if spec.get("burst_agents") else [])
    last_done = t_start
    for r in results:
        for ds in r["done_at"].values():
            if ds:
                last_done = max(last_done, max(ds))
    for ep in endpoints + ["all"]:
        eps = ENDPOINTS if ep == "all" else [ep]
        lat, in_window, ok, non2xx, errors, total = [], 0, 0, 0, 0, 0
        for r in results:
            for e in eps:
                lat.extend(r["lat"].get(e, ()))
                in_window += sum(1 for d in r["done_at"].get(e, ()) if d <= t_end)
            for (e, status), c in r["statuses"].items():
                if e in eps:
                    total += c
                    if 200 <= status < 300:
                        ok += c
                    else:
                        non2xx += c
            for (e, _), c in r["errors"].items():
                if e in eps:
                    errors += c
        lat.sort()
        if spec["mode"] == "closed":
            elapsed = max(1e-9, last_done - t_start)
            rate = ok / elapsed
        else:
            # Open loop: answers received before the end of the schedule, per second of schedule.
            rate = in_window / spec["duration"] if total else 0.0
        per[ep] = {"n": total, "rps": rate, "p50": pct(lat, 0.50), "p95": pct(lat, 0.95), "p99": pct(lat, 0.99),
                   "non2xx": non2xx, "errors": errors}
    statuses, errors = {}, {}
    for r in results:
        for (e, status), c in r["statuses"].items():
            if not 200 <= status < 300:
                statuses[f"{e} {status}"] = statuses.get(f"{e} {status}", 0) + c
        for (e, err), c in r["errors"].items():
            errors[f"{e} {err}"] = errors.get(f"{e} {err}", 0) + c
    lags = sorted(x for r in results for x in r["lags"])
    sent = sum(per[ep]["n"] + per[ep]["errors"] for ep in ENDPOINTS)
    out = {"per": per, "bad_statuses": statuses, "error_kinds": errors, "dropped": sum(r["dropped"] for r in results),
           "lag_p99": pct(lags, 0.99) if lags else 0.0, "gen_cpu_us": 1e6 * sum(r["cpu"] for r in results) / max(1, sent),
           "notices": [n for r in results for n in r["notices"]]}
    if spec["mode"] == "open":
        offered = spec["rate"]
        out["offered"] = offered
        out["kept_up"] = per["all"]["rps"] >= 0.97 * offered and out["dropped"] == 0 and per["all"]["errors"] == 0
    return out


def median_of(rounds: list[dict]) -> dict:
    """Medians of the rounds per endpoint and metric; counts are summed over the rounds."""
    per = {}
    for ep in rounds[0]["per"]:
        rows = [r["per"][ep] for r in rounds]
        per[ep] = {k: statistics.median(row[k] for row in rows) for k in ("rps", "p50", "p95", "p99")}
        per[ep].update({k: sum(row[k] for row in rows) for k in ("n", "non2xx", "errors")})
    out = {"per": per, "rounds": len(rounds), "dropped": sum(r["dropped"] for r in rounds),
           "cpu": {k: statistics.median(r["cpu"][k] for r in rounds) for k in rounds[0].get("cpu", {})},
           "lag_p99": statistics.median(r["lag_p99"] for r in rounds),
           "gen_cpu_us": statistics.median(r["gen_cpu_us"] for r in rounds),
           "bad_statuses": {}, "error_kinds": {}}
    for r in rounds:
        for key in ("bad_statuses", "error_kinds"):
            for k, v in r[key].items():
                out[key][k] = out[key].get(k, 0) + v
    if "kept_up" in rounds[0]:
        out["kept_up_rounds"] = sum(1 for r in rounds if r["kept_up"])
        out["offered"] = rounds[0]["offered"]
    return out


def print_table(title: str, results: dict[str, dict]) -> None:
    print(f"\n{title}")
    print(f"  {'target':8} {'endpoint':22} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'non-2xx':>8} {'errors':>7} {'answers':>8}")
    for target, res in results.items():
        for ep, row in res["per"].items():
            print(f"  {target:8} {ep:22} {row['rps']:8.0f} {row['p50']:8.1f} {row['p95']:8.1f} {row['p99']:8.1f} "
                  f"{row['non2xx']:8d} {row['errors']:7d} {row['n']:8d}")
    for target, res in results.items():
        extra = []
        if res.get("offered"):
            extra.append(f"kept up with {res['offered']} req/s in {res['kept_up_rounds']}/{res['rounds']} rounds")
            extra.append(f"not sent (over {INFLIGHT_CAP} in flight): {res['dropped']}")
            extra.append(f"generator send lag p99 {res['lag_p99']:.1f} ms")
        extra.append(f"generator CPU {res['gen_cpu_us']:.0f} us/request")
        if res.get("cpu"):
            extra.append("CPU % of one core: " + ", ".join(f"{k} {v:.0f}" for k, v in res["cpu"].items()))
        if res["bad_statuses"]:
            extra.append("non-2xx: " + ", ".join(f"{k} x{v}" for k, v in sorted(res["bad_statuses"].items())))
        if res["error_kinds"]:
            extra.append("transport errors: " + ", ".join(f"{k} x{v}" for k, v in sorted(res["error_kinds"].items())))
        print(f"  {target}: " + "; ".join(extra))
    for target in ("server", "floor"):
        if {target, "ceiling"} <= set(results):
            s, c = results[target]["per"]["all"], results["ceiling"]["per"]["all"]
            print(f"  ratios: throughput {target}/ceiling = {s['rps'] / max(c['rps'], 1e-9):.2f}; "
                  f"p99 {target}/ceiling = {s['p99'] / max(c['p99'], 1e-9):.1f}x")


# --------------------------------------------------------------------------------------------------
# Processes, database, setup


class Stack:
    """The processes this run started; stopped by process group, always."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.procs = []  # (name, Popen, log path)

    def start(self, name: str, argv: list[str], env: dict, cwd: Path) -> subprocess.Popen:
        log = self.workdir / f"{name}.log"
        with open(log, "wb") as fh:
            proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append((name, proc, log))
        return proc

    def check_alive(self) -> None:
        for name, proc, log in self.procs:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}; end of {log}:\n{tail}")

    def stop(self) -> None:
        for name, proc, _ in reversed(self.procs):
            _killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name, proc, _ in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _killpg(proc.pid, signal.SIGKILL)  # stragglers of the group (e.g. celery children)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                print(f"warning: {name} (pid {proc.pid}) did not stop", file=sys.stderr)
        self.procs = []


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


_TICK = os.sysconf("SC_CLK_TCK")


def proc_stats():
    """(pid, command name, parent pid, process group, CPU seconds so far) of every live process (/proc)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                raw = fh.read()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        yield int(entry.name), comm, int(fields[1]), int(fields[2]), (int(fields[11]) + int(fields[12])) / _TICK


def shared_service(comm: str) -> str | None:
    """'mariadb' or 'redis' for the shared servers' processes, else None."""
    return {"mariadbd": "mariadb", "mysqld": "mariadb", "redis-server": "redis"}.get(comm)


def cpu_snapshot(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each started process group, and of MariaDB and Redis (read from /proc)."""
    out = {name: 0.0 for name in groups}
    out.update({"mariadb": 0.0, "redis": 0.0})
    by_pgid = {pgid: name for name, pgid in groups.items()}
    for _, comm, _, pgid, cpu in proc_stats():
        name = by_pgid.get(pgid) or shared_service(comm)
        if name:
            out[name] += cpu
    return out


def fresh_stores(*, db: str, redis_url: str):
    """An empty throwaway database and Redis database for a bench run; the Redis client."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    mysql(f"DROP DATABASE IF EXISTS `{db}`")
    mysql(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    return client


def server_env(*, db: str, redis_url: str, workdir: Path, name: str) -> dict:
    """The production settings the bench's servers and workers run with (no test overrides)."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="spotbackend.settings", DEBUG="false",
               SECRET_KEY=f"bench-{name}-secret-key-not-for-production-0123456789",
               ALLOWED_HOSTS=f"{HOST},localhost", DATABASE_URL=f"mysql://root@{HOST}:3306/{db}",
               REDIS_URL=redis_url, SPOTBACKEND_VAR_DIR=str(workdir / "var"))
    for setting in ("TEST_DATABASE_NAME", "DB_READ_TIMEOUT", "DB_WRITE_TIMEOUT"):
        env.pop(setting, None)
    return env


def worker_args(spec: str) -> list[str]:
    """'gthread:4x2' -> gunicorn's flags; 'shipped' -> none (gunicorn.conf.py decides)."""
    if spec == "shipped":
        return []
    worker_class, _, size = spec.partition(":")
    workers, _, threads = size.partition("x")
    flags = ["--worker-class", worker_class, "--workers", workers or "4"]
    # (gunicorn runs gthread instead of sync when threads > 1, and gunicorn.conf.py sets threads)
    return flags + ["--threads", threads or "1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def mysql(sql: str, db: str | None = None, fetch: bool = False):
    import MySQLdb

    conn = MySQLdb.connect(host=HOST, port=3306, user="root", passwd="", db=db or "", charset="utf8mb4")
    try:
        cur = conn.cursor()
        cur.execute(sql)
        rows = cur.fetchall() if fetch else None
        conn.commit()
        return rows
    finally:
        conn.close()


def wait_ready(port: int, stack: Stack, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        status, _ = asyncio.run(http_call(port, http_request("GET", "/health", port, "x"), timeout=2))
        if status == 200:
            return
        time.sleep(0.3)
    raise RuntimeError(f"nothing answered on port {port} within {timeout:.0f}s")


def wait_idle(port: int, max_wait: float = 90) -> None:
    """After an overload the server still works off queued connections; wait until it answers fast."""
    deadline = time.monotonic() + max_wait
    req = http_request("GET", "/health", port, "x")
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        status, _ = asyncio.run(http_call(port, req, timeout=5))
        if status == 200 and time.monotonic() - t0 < 0.05:
            return
        time.sleep(0.5)
    print(f"  (warning: the target on :{port} was still busy {max_wait:.0f}s after the phase)", flush=True)


async def _bounded_gather(items, worker, concurrency: int):
    queue = list(items)
    results = {}

    async def run():
        while queue:
            item = queue.pop()
            results[id(item)] = await worker(item)

    await asyncio.gather(*(run() for _ in range(concurrency)))
    return results


def setup_fleet(agents: list, port: int, token: str) -> dict:
    """Register every agent through the API and post one pricing report each (so the pools exist).
    Failed calls are retried (at most 3 passes); the counts are reported."""
    failures = {"register": {}, "pricing-report": {}}
    rng = random.Random(7)

    async def register(agent):
        status, body = await http_call(port, http_request("POST", "/api/agents/register", port, token,
                                                          agent.register_body(token)), timeout=30)
        if status == 200:
            agent.agent_id = json.loads(body)["agent_id"]
            return True
        failures["register"][status] = failures["register"].get(status, 0) + 1
        return False

    async def report(agent):
        status, _ = await http_call(port, build_request(agent, "pricing-report", port, token, rng), timeout=30)
        if 200 <= status < 300:
            return True
        failures["pricing-report"][status] = failures["pricing-report"].get(status, 0) + 1
        return False

    todo = list(agents)
    for _ in range(3):
        res = asyncio.run(_bounded_gather(todo, register, 8))
        todo = [a for a in todo if not res[id(a)]]
        if not todo:
            break
    if todo:
        raise RuntimeError(f"register: {len(todo)} agents still failing after 3 passes: {failures}")
    # Concurrent reports of the same pools can deadlock in MariaDB (a 500: issue 8); retried, and a
    # report that still fails does not stop the benchmark, since the other agents of its type and
    # region report the same pools.
    todo = list(agents)
    for _ in range(5):
        res = asyncio.run(_bounded_gather(todo, report, 4))
        todo = [a for a in todo if not res[id(a)]]
        if not todo:
            break
    failures["pricing-report still failing"] = len(todo)
    return failures


def verify_burst(db: str, agents: list, notices: list) -> list[str]:
    """Exactly one termination event per burst agent, none for the others, one `true` each (policy:
    TERMINATION_REPLICA_AUTO_CREATE defaults to true and no agent has a replica yet)."""
    rows = mysql("SELECT agent_id, COUNT(*), SUM(action_taken = 'create_emergency_replica') FROM termination_events "
                 "WHERE event_type = 'termination_notice' GROUP BY agent_id", db=db, fetch=True)
    by_agent = {str(r[0]).replace("-", ""): (int(r[1]), int(r[2] or 0)) for r in rows}
    wanted = {a.agent_id.replace("-", "") for a in agents}
    counts = {}

    def problem(kind):
        counts[kind] = counts.get(kind, 0) + 1

    for aid in wanted:
        events, replicas = by_agent.get(aid, (0, 0))
        if events != 1:
            problem(f"agents with {events} termination events")
        elif replicas != 1:
            problem("agents whose decision is not create_emergency_replica")
    for _ in set(by_agent) - wanted:
        problem("agents outside the burst with termination events")
    trues = {}
    for index, status, flag in notices:
        if status != 200:
            problem(f"notices answered {'HTTP ' + str(status) if status > 0 else 'with a transport error'}")
        trues[index] = trues.get(index, 0) + (flag is True)
    for a in agents:
        if trues.get(a.index, 0) != 1:
            problem("agents without exactly one create_emergency_replica: true")
    return [f"{v} {k}" for k, v in sorted(counts.items())]


def print_targets(report: dict) -> None:
    """Issue 8's acceptance targets, as read from this run (information only: the exit code ignores them)."""
    lines = []
    levels = report["levels"]
    if "a" in levels:
        s, c = levels["a"]["results"]["server"]["per"]["all"], levels["a"]["results"]["ceiling"]["per"]["all"]
        ratio = s["rps"] / max(c["rps"], 1e-9)
        lines.append((ratio >= 0.8, f"max throughput >= 80% of the ceiling's (level a): {ratio:.0%}"))
    if "b" in levels:
        res = levels["b"]["results"]
        ratio = res["server"]["per"]["all"]["p99"] / max(res["ceiling"]["per"]["all"]["p99"], 1e-9)
        kept = res["server"]["kept_up_rounds"] == res["server"]["rounds"]
        lines.append((kept and ratio <= 1.5, f"keeps up with 600 req/s (level b): {res['server']['kept_up_rounds']}/"
                      f"{res['server']['rounds']} rounds, p99 {ratio:.1f}x the ceiling's (<= 1.5x)"))
    if levels:
        bad = sum(lv["results"]["server"]["per"]["all"][k] for lv in levels.values() for k in ("non2xx", "errors"))
        lines.append((bad == 0, f"zero non-2xx answers and transport errors at every level: {bad}"))
    if "burst" in report:
        row = report["burst"]["server"]["notices"]
        lines.append((row["p99"] < 100 and row["non2xx"] == 0 and row["errors"] == 0,
                      f"termination burst p99 < 100 ms: {row['p99']:.0f} ms"))
        lines.append((not report["burst"]["problems"], "exactly one decision per agent in the database"))
    if lines:
        print("\ntargets of issue 8 (information; the exit code does not depend on them):")
        for ok, text in lines:
            print(f"  [{'met' if ok else 'NOT met'}] {text}")


def log_summary(workdir: Path) -> None:
    """Say where the logs are and what the server logged as errors (e.g. the deadlocks of issue 8)."""
    for name in ("server", "celery"):
        log = workdir / f"{name}.log"
        if not log.exists():
            continue
        found = {"deadlocks (MySQL 1213)": 0, "lock wait timeouts (MySQL 1205)": 0, "tracebacks": 0}
        with open(log, errors="replace") as fh:  # streamed: with the access log it is large
            for line in fh:
                # A deadlock is logged as a traceback (answered 500) or, where the database errors are
                # answered 503, as one warning line.
                if line.startswith("MySQLdb.OperationalError: (1213") or "Database unavailable in" in line and \
                        "(1213," in line:
                    found["deadlocks (MySQL 1213)"] += 1
                elif line.startswith("MySQLdb.OperationalError: (1205") or "Database unavailable in" in line and \
                        "(1205," in line:
                    found["lock wait timeouts (MySQL 1205)"] += 1
                elif line.startswith("Traceback (most recent call last)"):
                    found["tracebacks"] += 1
                elif "Internal Server Error: " in line:
                    path = line.split("Internal Server Error: ", 1)[1].strip()
                    key = "500 on " + path.rsplit("/", 1)[-1].split("?")[0]
                    found[key] = found.get(key, 0) + 1
        found = {k: v for k, v in found.items() if v}
        print(f"{name} log: {log}" + (" (" + ", ".join(f"{k}: {v}" for k, v in found.items()) + ")" if found else
                                      " (no errors)"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one short round per level (a smoke run)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per round and target")
    parser.add_argument("--levels", default="a,b,c")
    parser.add_argument("--no-burst", action="store_true")
    parser.add_argument("--warmup", type=float, default=60.0,
                        help="seconds of the mix per target before measuring (the steady state: every "
                             "worker has seen every agent; default 60)")
    parser.add_argument("--burst-agents", type=int, default=500)
    parser.add_argument("--burst-window", type=float, default=5.0)
    parser.add_argument("--burst-load", default="a", choices=sorted(LEVELS), help="steady load during the burst")
    parser.add_argument("--procs", type=int, default=1, help="load generator processes (one is enough below ~5,000 calls/s)")
    parser.add_argument("--db-name", default="bench_load", help="throwaway database (dropped if it exists)")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5"),
                        help="Redis database owned by the bench: flushed at the start and the end")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--redis-down", action="store_true",
                        help="the server's REDIS_URL is a closed port (Redis out) and no Celery runs")
    parser.add_argument("--ablate", default="",
                        help="mechanisms switched off in the server, comma-separated (bench/ablation.py)")
    parser.add_argument("--workers", default=DEFAULT_WORKERS,
                        help="gunicorn's workers for both targets: CLASS:N or CLASS:NxTHREADS, or 'shipped' "
                             "(gunicorn.conf.py's own); default %(default)s")
    parser.add_argument("--floor", action="store_true",
                        help="a third target: the floor (bench/ceiling/floor.py), what the rules require and no more")
    parser.add_argument("--via-nginx", action="store_true",
                        help="a private nginx (deploy/nginx/) in front of each target, on free loopback ports")
    args = parser.parse_args()
    if args.floor and (args.via_nginx or args.redis_down):
        parser.error("--floor runs without nginx and with Redis (its one read per poll and config is its point)")
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, min(args.duration, 6.0), min(args.warmup, 5.0)
    levels = [x.strip() for x in args.levels.split(",") if x.strip()]
    for lv in levels:
        if lv not in LEVELS:
            parser.error(f"unknown level {lv!r}")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    def on_signal(signum, frame):
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C stops cleanly even if started ignoring it
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    venv_bin = Path(sys.executable).parent
    # Logs of the started processes stay under var/ (ignored by git) for reading after the run.
    workdir = ROOT / "var" / "bench-load" / datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir.mkdir(parents=True, exist_ok=True)
    stack = Stack(workdir)
    proxies = {}  # target -> PrivateNginx (--via-nginx)
    db = args.db_name
    db_created = False
    redis_client = None
    report = {"command": " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]), "levels": {},
              "via_nginx": args.via_nginx}
    try:
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start", flush=True)
        redis_client = fresh_stores(db=db, redis_url=args.redis_url)
        db_created = True
        env = server_env(db=db, redis_url=f"redis://{HOST}:{free_port()}/0" if args.redis_down else args.redis_url,
                         workdir=workdir, name="load")
        app = "spotbackend.wsgi:application"
        if args.ablate:
            env.update(ABLATE=args.ablate, PYTHONPATH=str(ROOT / "bench"))
            app = "ablation:application"
        t0 = time.monotonic()
        for command in (["migrate", "--noinput"], ["collectstatic", "--noinput"]):  # as a deploy does
            subprocess.run([sys.executable, "manage.py", *command, "-v", "0"], cwd=ROOT, env=env, check=True)
        out = subprocess.run([sys.executable, "manage.py", "create_client", "--name", "Bench fleet", "--email",
                              "bench@example.com"], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        token = out.stdout.strip().splitlines()[-1]
        print(f"database {db} migrated, client created ({time.monotonic() - t0:.0f}s)", flush=True)

        server_port, ceiling_port = free_port(), free_port()
        gunicorn_args = (["-c", str(GUNICORN_CONF)] if GUNICORN_CONF.exists() else []) + GUNICORN_ARGS
        gunicorn_args += worker_args(args.workers)
        stack.start("server", [str(venv_bin / "gunicorn"), app, "--bind",
                               f"{HOST}:{server_port}", *gunicorn_args], env, ROOT)
        if not args.redis_down:
            stack.start("celery", [str(venv_bin / "celery"), "-A", "spotbackend", "worker", "-B", "--loglevel", "WARNING",
                                   "--schedule", str(workdir / "celerybeat-schedule")], env, ROOT)
        ceiling_env = dict(os.environ, DJANGO_SETTINGS_MODULE="ceiling.settings", ALLOWED_HOSTS=f"{HOST},localhost",
                           PYTHONPATH=str(ROOT),  # gunicorn.conf.py
                           SPOTBACKEND_VAR_DIR=str(workdir / "var"))
        stack.start("ceiling", [str(venv_bin / "gunicorn"), "ceiling.wsgi:application", "--bind",
                                f"{HOST}:{ceiling_port}", *gunicorn_args], ceiling_env, ROOT / "bench")
        targets = {"server": server_port, "ceiling": ceiling_port}
        if args.floor:  # bench/ceiling/floor.py, with the server's request-id and metrics middleware
            targets["floor"] = free_port()
            stack.start("floor", [str(venv_bin / "gunicorn"), "ceiling.wsgi:application", "--bind",
                                  f"{HOST}:{targets['floor']}", *gunicorn_args],
                        dict(ceiling_env, DJANGO_SETTINGS_MODULE="ceiling.floor_settings", FLOOR_OPS="1",
                             FLOOR_REDIS_URL=args.redis_url, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'bench'}"),
                        ROOT / "bench")
        for port in targets.values():
            wait_ready(port, stack)
        print(f"server on :{server_port} (gunicorn {args.workers}; Celery worker + beat), ceiling on :{ceiling_port}; "
              f"logs in {workdir}", flush=True)

        if args.via_nginx:
            sys.path.insert(0, str(ROOT))
            from deploy.nginx.local import PrivateNginx

            for target, port in (("server", server_port), ("ceiling", ceiling_port)):
                proxies[target] = PrivateNginx(workdir / f"nginx-{target}", web=[f"{HOST}:{port}"],
                                               worker_connections=16384, keepalive=32).start()
                wait_ready(proxies[target].port, stack)
            server_port, ceiling_port = proxies["server"].port, proxies["ceiling"].port
            targets.update(server=server_port, ceiling=ceiling_port)
            print(f"through nginx (deploy/nginx/): server via :{server_port}, ceiling via :{ceiling_port}", flush=True)

        n_agents = max(LEVELS[lv]["agents"] for lv in levels + ([args.burst_load] if not args.no_burst else []))
        fleet = [Agent(i) for i in range(n_agents)]
        t0 = time.monotonic()
        failures = setup_fleet(fleet, server_port, token)
        print(f"registered {n_agents} agents and posted a pricing report each through the API "
              f"({time.monotonic() - t0:.0f}s; failed calls retried: {failures})", flush=True)
        for port in targets.values():
            prepare_requests(fleet, port, token)

        def phase(target: str, spec: dict, agents: list) -> dict:
            stack.check_alive()
            spec = dict(spec, port=targets[target], token=token)
            groups = {name: proc.pid for name, proc, _ in stack.procs}
            groups.update({f"nginx-{t}": proxy.proc.pid for t, proxy in proxies.items()})  # own process groups
            cpu0, wall0 = cpu_snapshot(groups), time.monotonic()
            results = run_parallel(spec, agents, args.procs)
            cpu1, wall = cpu_snapshot(groups), time.monotonic() - wall0
            stack.check_alive()
            summary = summarize(results, spec)
            # Share of one core per process group over the phase (the generator's own CPU is above).
            summary["cpu"] = {k: 100 * (cpu1[k] - cpu0[k]) / wall for k in cpu1}
            wait_idle(targets[target])
            return summary

        # Warm up: imports, connections and caches. A real fleet runs for hours, so what is measured is
        # the steady state: long enough for every agent to have called every worker (--warmup).
        for target in targets:
            phase(target, {"mode": "closed", "connections": 16, "duration": args.warmup, "seed": 99}, fleet)
        print(f"warmed up; levels {','.join(levels)}: {args.rounds} round(s) of {args.duration:.0f}s per target",
              flush=True)

        for lv in levels:
            conf = LEVELS[lv]
            agents = fleet[: conf["agents"]]
            spec = {k: conf[k] for k in ("mode", "connections", "rate") if k in conf}
            rounds = {t: [] for t in targets}
            for r in range(args.rounds):
                order = list(targets) if r % 2 == 0 else list(reversed(targets))  # no systematic first mover
                for target in order:
                    s = dict(spec, duration=args.duration, seed=1 + r)  # same sequence for both targets
                    rounds[target].append(phase(target, s, agents))
                print(f"  level {lv} round {r + 1}: " + ", ".join(
                    f"{t} {rounds[t][-1]['per']['all']['rps']:.0f} req/s p99 {rounds[t][-1]['per']['all']['p99']:.0f} ms"
                    for t in targets), flush=True)
            results = {t: median_of(rounds[t]) for t in targets}
            # Other work on the machine moves absolute numbers (not much the ratios): say how busy it was.
            title = (f"level {lv}: {conf['title']} (medians of {args.rounds} round(s) of {args.duration:.0f}s; "
                     f"counts summed; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
            print_table(title, results)
            report["levels"][lv] = {"title": conf["title"], "results": results}

        if not args.no_burst:
            conf = LEVELS[args.burst_load]
            agents = fleet[: conf["agents"]]
            burst_agents = agents[: args.burst_agents]
            spec = {k: conf[k] for k in ("mode", "connections", "rate") if k in conf}
            duration = max(args.duration, args.burst_window + 4)
            spec.update(duration=duration, seed=50, burst_agents=burst_agents, burst_at=2.0,
                        burst_window=args.burst_window)
            burst = {t: phase(t, spec, agents) for t in targets}
            print(f"\ntermination burst: {len(burst_agents)} notices from {len(burst_agents)} agents within "
                  f"{args.burst_window:.0f}s, during the load of level {args.burst_load} ({conf['title']})")
            for t, res in burst.items():
                row = res["per"][NOTICE]
                bad = {k: v for k, v in {**res["bad_statuses"], **res["error_kinds"]}.items() if k.startswith(NOTICE)}
                print(f"  {t:8} notices: p50 {row['p50']:.1f} ms, p95 {row['p95']:.1f} ms, p99 {row['p99']:.1f} ms, "
                      f"non-2xx {row['non2xx']}, errors {row['errors']}" + (f" ({bad})" if bad else "") +
                      f"; steady load meanwhile {res['per']['all']['rps']:.0f} req/s, "
                      f"p99 {res['per']['all']['p99']:.0f} ms, non-2xx {res['per']['all']['non2xx']}, "
                      f"errors {res['per']['all']['errors']}; CPU % of one core: "
                      + ", ".join(f"{k} {v:.0f}" for k, v in res["cpu"].items()))
            problems = verify_burst(db, burst_agents, burst["server"]["notices"])
            print("  database: " + ("each agent has exactly one termination event and one create_emergency_replica "
                                    "decision; every answer carried exactly one true" if not problems else
                                    "; ".join(problems)))
            report["burst"] = {t: {"notices": res["per"][NOTICE], "steady": res["per"]["all"]}
                               for t, res in burst.items()}
            report["burst"]["problems"] = problems
        print_targets(report)
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2, default=str))
        return 0
    finally:
        for proxy in proxies.values():
            proxy.stop()
        stack.stop()
        if db_created:
            try:
                mysql(f"DROP DATABASE IF EXISTS `{db}`")
            except Exception as exc:  # report, keep cleaning up
                print(f"warning: could not drop database {db}: {exc}", file=sys.stderr)
        if redis_client is not None:
            try:
                redis_client.flushdb()
            except Exception as exc:
                print(f"warning: could not flush {args.redis_url}: {exc}", file=sys.stderr)
        log_summary(workdir)


if __name__ == "__main__":
    sys.exit(main())
