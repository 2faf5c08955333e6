"""Hosts come and go without losing anything (docs/OPERATIONS.md, "Hosts come and go"): a real nginx
(deploy/nginx/, private, on a free loopback port) in front of two gunicorn hosts of this checkout that
share the test database and Redis, under a steady agent load (register, heartbeats, pending-commands,
pricing reports, config) through nginx.

(a) a host dies (SIGKILL to its process group) mid-load: every acknowledged heartbeat and pricing
    report is in the database, the calls after the death are answered by the other host, and a call can
    only fail if it was in flight on the dead host;
(b) a rolling restart (each host stopped with SIGTERM, started again, back in nginx's rotation before
    the next one stops): not one failed agent call."""
import json
import time

import pytest

from clients.tests.factories import ClientFactory
from deploy.nginx.local import PrivateNginx
from spotbackend.tests.fleet import AgentLoad, Host, lost_writes

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

FAIL_TIMEOUT = 2  # seconds nginx keeps a failed host out of the rotation (production: 10)


@pytest.fixture
def fleet(tmp_path):
    hosts = [Host(tmp_path, "host-a"), Host(tmp_path, "host-b")]
    proxy = None
    try:
        for host in hosts:
            host.start()
        for host in hosts:
            host.wait_healthy()
        proxy = PrivateNginx(tmp_path / "nginx", web=[h.addr for h in hosts], max_fails=1,
                             fail_timeout=FAIL_TIMEOUT).start()
        yield hosts, proxy
    finally:
        if proxy is not None:
            proxy.stop()
        for host in hosts:
            host.cleanup()


def access_log(proxy) -> dict:
    """request id -> the nginx access log entry (status, upstream addresses tried)."""
    entries = {}
    for line in proxy.access_log().splitlines():
        doc = json.loads(line)
        entries[doc["request_id"]] = doc
    return entries


def access_log_of(proxy, request_ids) -> dict:
    """The access log once it holds every one of `request_ids` (nginx writes a line just after the
    answer is sent, so the last lines may lag the answers a moment)."""
    deadline = time.monotonic() + 10
    while True:
        log = access_log(proxy)
        if all(rid in log for rid in request_ids) or time.monotonic() > deadline:
            return log
        time.sleep(0.05)  # polling interval; the deadline bounds the wait


def served_by(entry) -> str:
    """The upstream that gave the answer (the last one tried)."""
    return entry["upstream"].split(",")[-1].strip().split(" : ")[-1].strip()


def test_a_host_killed_mid_load_loses_no_acknowledged_write(fleet):
    (a, b), proxy = fleet
    client = ClientFactory()
    load = AgentLoad(proxy.url, client.token, agents=6)
    load.register()
    load.start()
    try:
        load.wait_calls(60)
        # Both hosts serve before the kill.
        assert {served_by(e) for e in access_log(proxy).values()} >= {a.addr, b.addr}
        killed_at = time.monotonic()
        a.kill()
        load.wait_calls(120)
    finally:
        calls = load.stop()
    after = [c for c in calls if c.started > killed_at]
    failed = [c for c in calls if c.status != 200]
    print(f"\nkill: {len(calls)} calls, {len(after)} after the kill, {len(failed)} failed: "
          f"{[(c.kind, c.status, c.error) for c in failed]}")
    # A failed call was in flight on the dead host: started before the kill, ended after it.
    assert all(c.started <= killed_at <= c.ended for c in failed), failed
    assert len(failed) <= load.agents
    # The agents' next calls are all answered, by the other host.
    assert after and all(c.status == 200 for c in after)
    log = access_log_of(proxy, [c.request_id for c in after])
    assert all(served_by(log[c.request_id]) == b.addr for c in after), [log.get(c.request_id) for c in after[:5]]
    retried = [e for e in log.values() if "," in e["upstream"]]
    print(f"kill: {len(retried)} calls were retried by nginx on the other host")
    # No acknowledged write is lost.
    assert lost_writes(calls, load.ids) == []
    assert sum(1 for c in calls if c.kind == "pricing-report" and c.status == 200) > 0


def test_a_rolling_restart_fails_no_agent_call(fleet):
    hosts, proxy = fleet
    client = ClientFactory()
    load = AgentLoad(proxy.url, client.token, agents=6, max_rounds=2000)
    load.register()
    load.start()
    try:
        load.wait_calls(40)
        for host in hosts:
            exit_code = host.stop()
            assert exit_code == 0, host.log()[-2000:]
            load.wait_calls(20)  # the other host alone carries the load
            host.start()
            host.wait_healthy()
            # Back in nginx's rotation (after its fail_timeout) before the next host stops.
            seen = len(proxy.access_log().splitlines())
            deadline = time.monotonic() + 30
            while not any(served_by(json.loads(line)) == host.addr and json.loads(line)["status"] == 200
                          for line in proxy.access_log().splitlines()[seen:]):
                assert time.monotonic() < deadline, f"{host.name} never served again through nginx"
                load.wait_calls(5)
        load.wait_calls(40)
    finally:
        calls = load.stop()
    failed = [c for c in calls if c.status != 200]
    print(f"\nrolling restart: {len(calls)} calls, {len(failed)} failed")
    assert failed == []
    assert lost_writes(calls, load.ids) == []
