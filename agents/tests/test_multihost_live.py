"""Two web hosts behind one load balancer: two gunicorn servers on different ports sharing one MariaDB
keep every guarantee of the hot path (docs/ARCHITECTURE.md §8): a write is seen by the next call on
either host, a command is delivered once, heartbeats never move backwards, and a rotated token or a
deactivated client is refused everywhere within AUTH_CACHE_SECONDS."""
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from django.conf import settings as django_settings

from agents.models import Agent, Command, CommandStatus
from agents.services.commands import command_issue
from agents.services.agent_settings import agent_settings_update
from agents.tests import payloads
from agents.tests.factories import AgentFactory
from clients.services import AUTH_CACHE_SECONDS, client_token_rotate
from clients.tests.factories import ClientFactory
from conftest import TEST_REDIS_URL

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
# Tokens are trusted for AUTH_CACHE_SECONDS and heartbeats buffered for HEARTBEAT_BUFFER_SECONDS (2 s
# each); the margin is for a busy test machine.
CHANGE_SEEN_WITHIN = AUTH_CACHE_SECONDS + 3.0


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _database_url() -> str:
    db = django_settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"mysql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}/{db['NAME']}"


@pytest.fixture
def two_hosts(tmp_path):
    if django_settings.DATABASES["default"]["ENGINE"] not in ("django.db.backends.mysql", "spotbackend.db"):
        pytest.skip("two hosts share one server database: MariaDB (make test)")
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": TEST_REDIS_URL,  # the cache both hosts share, as in production
        "SPOTBACKEND_VAR_DIR": str(tmp_path),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
    }
    procs, urls = [], []
    for _ in range(2):
        port = _free_port()
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "spotbackend.wsgi:application", "--bind", f"127.0.0.1:{port}",
                 "--workers", "2", "--threads", "2", "--no-control-socket", "--graceful-timeout", "2"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        for url, proc in zip(urls, procs):
            while True:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                try:
                    if requests.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _until(check, what: str):
    deadline = time.monotonic() + CHANGE_SEEN_WITHIN
    while not check():
        assert time.monotonic() < deadline, f"not seen within {CHANGE_SEEN_WITHIN}s: {what}"
        time.sleep(0.2)


def test_two_hosts_keep_every_guarantee(two_hosts):
    a, b = two_hosts
    client = ClientFactory()
    agent = AgentFactory(client=client, instance_id="i-0aaa1111", az="us-east-1a", current_mode="spot")
    headers = {"Authorization": f"Bearer {client.token}"}

    def get(host, path, **kw):
        return requests.get(f"{host}/api/agents/{agent.pk}/{path}", headers=headers, timeout=5, **kw)

    # Warm every cache on both hosts.
    for host in (a, b):
        assert get(host, "config").status_code == 200
        assert get(host, "pending-commands", params={"instance_id": "i-0aaa1111"}).json()["commands"] == []

    # A command is delivered once across both hosts, even to simultaneous polls.
    command = command_issue(agent=agent, target_mode="ondemand")
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(
            lambda i: get((a, b)[i % 2], "pending-commands", params={"instance_id": "i-0aaa1111"}).json(), range(16)
        ))
    delivered = [c["id"] for answer in answers for c in answer["commands"]]
    assert delivered == [str(command.pk)]
    assert Command.objects.get(pk=command.pk).status == CommandStatus.DELIVERED

    # A settings change shows in the very next config call, on both hosts.
    agent_settings_update(agent=Agent.objects.get(pk=agent.pk), changes={"replica_count": 4})
    assert all(get(h, "config").json()["replica_count"] == 4 for h in (a, b))

    # Heartbeats through both hosts (buffered there): last_heartbeat_at never moves backwards and
    # reaches the last heartbeat's second within the buffer's lag.
    def last_seen():
        return Agent.objects.values_list("last_heartbeat_at", flat=True).get(pk=agent.pk)

    seen = [last_seen()]
    for i in range(10):
        r = requests.post(f"{(a, b)[i % 2]}/api/agents/{agent.pk}/heartbeat", json=payloads.heartbeat(),
                          headers=headers, timeout=5)
        assert r.status_code == 200 and r.json()["recorded_as"] == "primary"
        seen.append(last_seen())
        time.sleep(0.3)
    sent_last = Agent.objects.values_list("last_heartbeat_at", flat=True).get(pk=agent.pk)
    final = time.time() - 0.3
    _until(lambda: last_seen().timestamp() >= int(final), "buffered heartbeats written")
    seen.append(last_seen())
    assert seen == sorted(seen) and seen[-1] > seen[0] and seen[-1] >= sent_last

    # A rotated token stops working on both hosts; the new one works on both.
    new = client_token_rotate(client=client)
    _until(lambda: all(get(h, "config").status_code == 401 for h in (a, b)), "rotation")
    headers = {"Authorization": f"Bearer {new}"}
    assert all(get(h, "config").status_code == 200 for h in (a, b))

    # A deactivated client is refused on both hosts.
    client.refresh_from_db()
    client.is_active = False
    client.save()
    _until(lambda: all(get(h, "config").status_code == 403 for h in (a, b)), "deactivation")
