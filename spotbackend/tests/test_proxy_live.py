"""A real nginx (deploy/nginx/, private, loopback) in front of a gunicorn gthread host of this checkout:
its own errors are JSON, the request id travels through to the app's logs, the client address reaches
the app, and idle or slow clients held against nginx do not keep the agents' calls from gunicorn's few
threads (which they do when gunicorn faces them alone)."""
import json
import socket
import threading
import time

import pytest
import requests

from agents.tests import payloads
from clients.tests.factories import ClientFactory
from deploy.nginx.local import PrivateNginx, free_port
from spotbackend.tests.fleet import AgentLoad, Host

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def one_host(tmp_path):
    # One worker with two threads: the fewer the threads, the easier they are to take away.
    host = Host(tmp_path, "host", workers=1, threads=2, LOG_FORMAT="json", TOKEN_FAILURE_RATE="3/min")
    proxy = None
    try:
        host.start().wait_healthy()
        proxy = PrivateNginx(tmp_path / "nginx", web=[host.addr]).start()
        yield host, proxy
    finally:
        if proxy is not None:
            proxy.stop()
        host.cleanup()


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def test_nginx_errors_are_json_and_the_request_id_reaches_the_app(one_host):
    host, proxy = one_host
    # A body beyond client_max_body_size: 413 JSON from nginx, gunicorn never sees it.
    r = requests.post(f"{proxy.url}/api/agents/x/heartbeat", data=b"x" * (5 * 1024 * 1024),
                      headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 413 and r.json()["success"] is False and r.headers["X-Request-ID"]
    # A header beyond large_client_header_buffers, a request line too long, garbage: JSON too.
    for raw, status in ((b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 400),
                        (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
                        (b"NOT HTTP\r\n\r\n", 400)):
        head, _, body = _raw(proxy.port, raw).partition(b"\r\n\r\n")
        assert head.startswith(f"HTTP/1.1 {status}".encode()), head
        assert b"application/json" in head and json.loads(body)["success"] is False

    # The caller's request id: echoed once, passed to the app, which logs it (a 404 is logged).
    r = requests.get(f"{proxy.url}/api/agents/no-such-agent/config", headers={"X-Request-ID": "trace-42"}, timeout=10)
    assert r.status_code in (401, 404) and r.headers["X-Request-ID"] == "trace-42"
    assert r.raw.headers.getlist("X-Request-ID") == ["trace-42"]
    # An unsafe one is replaced by nginx's own, which the app logs as well.
    r = requests.get(f"{proxy.url}/no-such-route", headers={"X-Request-ID": "bad id <x>"}, timeout=10)
    made = r.headers["X-Request-ID"]
    assert r.status_code == 404 and len(made) == 32 and int(made, 16) >= 0
    app_ids = [json.loads(line).get("request_id") for line in host.log().splitlines() if line.startswith("{")]
    assert "trace-42" in app_ids and made in app_ids
    # nginx writes its access line once the answer is sent: it may come a moment after the answer.
    deadline = time.monotonic() + 10
    while True:
        proxy_ids = [json.loads(line)["request_id"] for line in proxy.access_log().splitlines()]
        if "trace-42" in proxy_ids and made in proxy_ids or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # polling interval; the deadline bounds the wait
    assert "trace-42" in proxy_ids and made in proxy_ids


def test_the_client_address_is_forwarded_and_cannot_be_forged(one_host):
    """NUM_PROXIES=1: the app takes the address nginx appended to X-Forwarded-For; one a client made up
    does not let it escape the failed-token limit (3/min here)."""
    _, proxy = one_host
    statuses = []
    for i in range(5):
        r = requests.get(f"{proxy.url}/api/client/validate", timeout=10,
                         headers={"Authorization": "Bearer wrong", "X-Forwarded-For": f"198.51.100.{i}"})
        statuses.append(r.status_code)
    assert statuses[:3] == [401, 401, 401] and statuses[3:] == [429, 429], statuses


def test_all_hosts_down_is_a_json_502(tmp_path):
    with PrivateNginx(tmp_path, web=[f"127.0.0.1:{free_port()}"]) as proxy:
        r = requests.post(f"{proxy.url}/api/agents/x/heartbeat", json={}, timeout=10)
        assert r.status_code == 502 and r.json()["success"] is False and r.headers["Retry-After"] == "5"


IDLE = 200
SLOW = 12
SLOW_STEPS = 4  # bytes each slow client sends, one every SLOW_EVERY seconds
SLOW_EVERY = 2.0
ANSWER_WITHIN = 8.0  # seconds a heartbeat may take (requests' timeout): far above its normal few ms


class Attack:
    """IDLE connections that send nothing and SLOW ones that send a request one byte at a time (half
    stuck in the headers, half in the body), all against one port, for a bounded time."""

    def __init__(self, port: int, agent_path: str):
        self.port = port
        self.idle, self.slow = [], []
        self.head = (f"POST {agent_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     f"Content-Length: 100\r\n\r\n").encode()
        self.thread = threading.Thread(target=self._drip, daemon=True)
        self.stop = threading.Event()

    def __enter__(self):
        for _ in range(IDLE):
            self.idle.append(socket.create_connection(("127.0.0.1", self.port), timeout=10))
        for i in range(SLOW):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            # Even: the headers arrive a byte at a time; odd: the headers at once, then the body slowly.
            s.sendall(self.head[:10] if i % 2 == 0 else self.head + b"{")
            self.slow.append(s)
        self.thread.start()
        return self

    def _drip(self):
        for step in range(SLOW_STEPS):
            if self.stop.wait(SLOW_EVERY):
                return
            for i, s in enumerate(self.slow):
                try:
                    s.sendall(self.head[10 + step:11 + step] if i % 2 == 0 else b" ")
                except OSError:
                    pass  # closed by the server: that is its defence

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=30)
        for s in self.idle + self.slow:
            s.close()


def _heartbeats(base: str, token: str, agent_id: str, instance_id: str, *, until_one_fails=False) -> list:
    """8 heartbeats, one after the other; each status, or the exception name when none came in time."""
    out = []
    for _ in range(8):
        try:
            r = requests.post(f"{base}/api/agents/{agent_id}/heartbeat", json=payloads.heartbeat(instance_id=instance_id),
                              headers={"Authorization": f"Bearer {token}"}, timeout=ANSWER_WITHIN)
            out.append(r.status_code)
        except requests.RequestException as exc:
            out.append(type(exc).__name__)
        if until_one_fails and out[-1] != 200:
            break
    return out


def test_idle_and_slow_clients_against_nginx_do_not_starve_the_agents(one_host):
    host, proxy = one_host
    client = ClientFactory()
    load = AgentLoad(proxy.url, client.token, agents=1)
    load.register()
    agent_id, instance_id = load.ids[0], "i-0f1ee70000000000"
    path = f"/api/agents/{agent_id}/heartbeat"

    with Attack(proxy.port, path):
        through_nginx = _heartbeats(proxy.url, client.token, agent_id, instance_id)
        # And a termination notice (the urgent route) meanwhile.
        notice = requests.post(
            f"{proxy.url}/api/agents/{agent_id}/termination-imminent", timeout=ANSWER_WITHIN,
            headers={"Authorization": f"Bearer {client.token}"},
            json={"instance_id": instance_id, "termination_time": "2026-11-26T19:25:57Z"})
    print(f"\nthrough nginx, {IDLE} idle + {SLOW} slow clients held: {through_nginx}, notice {notice.status_code}")
    assert through_nginx == [200] * 8
    assert notice.status_code == 200, notice.text

    # The same clients against gunicorn itself take its two threads: the heartbeats wait behind them.
    with Attack(host.port, path):
        direct = _heartbeats(f"http://{host.addr}", client.token, agent_id, instance_id, until_one_fails=True)
    print(f"directly against gunicorn: {direct}")
    assert direct != [200] * 8
