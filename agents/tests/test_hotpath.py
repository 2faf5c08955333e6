"""The agent's hot path (heartbeat, config, pending-commands, authentication): what it costs in SQL in
the steady state, and that every cached answer follows the change it depends on."""
import socket
import threading
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from datetime import timedelta

from django.utils import timezone

from agents.models import Agent, AgentStatus, Command, CommandStatus
from agents.services import heartbeats
from agents.services.heartbeats import heartbeats_flush, heartbeats_write
from agents.services.sweeps import agents_mark_stale_offline
from agents.services.commands import command_issue
from agents.services.agent_settings import agent_settings_update
from agents.tests import payloads
from agents.tests.factories import AgentFactory, SpotPoolFactory
from clients.services import client_token_rotate
from clients.tokens import EPOCH_KEY, token_cache
from conftest import bearer
from spotbackend.hotcache import hot_client, hot_fill, hot_get, hot_invalidate, hot_reset

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(client_obj):
    return AgentFactory(client=client_obj, instance_id="i-0aaa1111", az="us-east-1a", current_mode="spot")


def calls(api, agent):
    return {
        "heartbeat": lambda: api.post(f"/api/agents/{agent.pk}/heartbeat", payloads.heartbeat(), format="json"),
        "config": lambda: api.get(f"/api/agents/{agent.pk}/config"),
        "pending": lambda: api.get(f"/api/agents/{agent.pk}/pending-commands?instance_id=i-0aaa1111"),
    }


def queries_of(call) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as ctx:
        response = call()
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries), response


@pytest.mark.parametrize("name,most", [("heartbeat", 1), ("config", 0), ("pending", 0)])
def test_steady_state_costs_at_most_one_statement(api, agent, name, most):
    call = calls(api, agent)[name]
    call()  # the first call fills the caches
    count, _ = queries_of(call)
    assert count <= most


def test_steady_state_cost_does_not_grow_with_the_fleet(api, client_obj, agent):
    from agents.cache import agent_cache_warm

    agent_cache_warm(agent_pk=agent.pk)  # as a registration does: Redis knows the agent
    for name, call in calls(api, agent).items():
        call()
        before, _ = queries_of(call)
        AgentFactory.create_batch(30, client=client_obj)
        after, _ = queries_of(call)
        assert after <= before, name


@pytest.mark.parametrize("write_behind", [True, False])
def test_fast_heartbeat_moves_the_time_and_never_backwards(settings, api, agent, write_behind):
    settings.HEARTBEAT_WRITE_BEHIND = write_behind
    future = agent.last_heartbeat_at.replace(year=agent.last_heartbeat_at.year + 1)
    Agent.objects.filter(pk=agent.pk).update(last_heartbeat_at=future)
    for _ in range(2):
        r = api.post(f"/api/agents/{agent.pk}/heartbeat", payloads.heartbeat(), format="json")
        assert r.json()["recorded_as"] == "primary"
    heartbeats_flush()
    agent.refresh_from_db()
    assert agent.last_heartbeat_at == future  # another host's later heartbeat is not undone
    Agent.objects.filter(pk=agent.pk).update(last_heartbeat_at=None)
    api.post(f"/api/agents/{agent.pk}/heartbeat", payloads.heartbeat(), format="json")
    heartbeats_flush()
    agent.refresh_from_db()
    assert agent.last_heartbeat_at is not None


def test_a_flush_moves_each_agent_to_its_own_heartbeat_only_forward_across_batches(client_obj, monkeypatch):
    monkeypatch.setattr(heartbeats, "BATCH", 2)  # several statements, one with a single row
    now = timezone.now().replace(microsecond=123456)
    earlier, later = now - timedelta(minutes=5), now + timedelta(minutes=5)
    never, behind, ahead, equal, untouched = (AgentFactory(client=client_obj) for _ in range(5))
    Agent.objects.filter(pk=never.pk).update(last_heartbeat_at=None)
    Agent.objects.filter(pk=behind.pk).update(last_heartbeat_at=earlier)
    Agent.objects.filter(pk=ahead.pk).update(last_heartbeat_at=later)
    Agent.objects.filter(pk=equal.pk).update(last_heartbeat_at=now)
    Agent.objects.filter(pk=untouched.pk).update(last_heartbeat_at=earlier)
    pending = {str(a.pk): (now + timedelta(seconds=k)).timestamp() for k, a in enumerate((never, behind, ahead, equal))}
    pending["not-a-uuid"] = now.timestamp()
    pending["00000000-0000-4000-8000-000000000000"] = now.timestamp()  # no such agent: nothing happens
    heartbeats_write(pending)
    stored = dict(Agent.objects.values_list("pk", "last_heartbeat_at"))
    assert stored[never.pk] == now  # to the microsecond
    assert stored[behind.pk] == now + timedelta(seconds=1)
    assert stored[ahead.pk] == later  # never backwards
    assert stored[equal.pk] == now + timedelta(seconds=3)
    assert stored[untouched.pk] == earlier


def test_a_spread_flush_paces_its_statements(client_obj, monkeypatch):
    pauses = []
    monkeypatch.setattr(heartbeats, "_sleep", pauses.append)
    monkeypatch.setattr(heartbeats, "SPREAD_BATCH", 2)
    fleet = [AgentFactory(client=client_obj) for _ in range(5)]
    at = timezone.now().replace(microsecond=0) + timedelta(minutes=1)
    with CaptureQueriesContext(connection) as ctx:
        assert heartbeats_write({str(a.pk): at.timestamp() for a in fleet}, spread=0.9) == 5
    assert sum(q["sql"].startswith("UPDATE") for q in ctx.captured_queries) == 3  # 2 + 2 + 1 agents
    assert pauses == [pytest.approx(0.3)] * 2  # between statements, never after the last
    assert set(Agent.objects.filter(pk__in=[a.pk for a in fleet]).values_list("last_heartbeat_at", flat=True)) == {at}
    pauses.clear()
    heartbeats_write({str(fleet[0].pk): at.timestamp()}, spread=0.9)  # one statement: no pause
    heartbeats_write({str(a.pk): at.timestamp() for a in fleet})  # not spread (a sweep): no pause
    assert pauses == []


def test_the_periodic_flush_is_spread_over_at_most_half_its_interval(settings, monkeypatch):
    from agents import periodic

    spreads = []
    monkeypatch.setattr(periodic, "heartbeats_flush", lambda *, spread: spreads.append(spread) or 0)
    settings.HEARTBEAT_FLUSH_SECONDS, settings.HEARTBEAT_FLUSH_SPREAD_SECONDS = 5, 1.0
    periodic.heartbeats_flush_task()
    settings.HEARTBEAT_FLUSH_SECONDS, settings.HEARTBEAT_FLUSH_SPREAD_SECONDS = 1, 10.0
    periodic.heartbeats_flush_task()
    settings.HEARTBEAT_FLUSH_SPREAD_SECONDS = 0
    periodic.heartbeats_flush_task()
    assert spreads == [1.0, 0.5, 0.0]


def test_heartbeats_are_written_behind_and_flushed_once(api, agent):
    url = f"/api/agents/{agent.pk}/heartbeat"
    api.post(url, payloads.heartbeat(), format="json")  # one UPDATE; the signature is now cached
    Agent.objects.filter(pk=agent.pk).update(last_heartbeat_at=None)
    count, _ = queries_of(lambda: api.post(url, payloads.heartbeat(), format="json"))
    assert count == 0
    agent.refresh_from_db()
    assert agent.last_heartbeat_at is None  # not yet written...
    assert heartbeats_flush() == 1  # ...until the flush
    agent.refresh_from_db()
    assert agent.last_heartbeat_at is not None
    assert heartbeats_flush() == 0  # nothing is written twice


def test_a_swept_agent_comes_back_online_on_its_next_heartbeat(api, agent):
    url = f"/api/agents/{agent.pk}/heartbeat"
    api.post(url, payloads.heartbeat(), format="json")  # signature cached
    heartbeats_flush()
    old = timezone.now() - timedelta(hours=1)
    Agent.objects.filter(pk=agent.pk).update(last_heartbeat_at=old)
    assert agents_mark_stale_offline() == 1
    api.post(url, payloads.heartbeat(), format="json")
    agent.refresh_from_db()
    assert agent.status == AgentStatus.ONLINE and agent.last_heartbeat_at > old


def test_the_sweep_counts_heartbeats_still_in_redis(api, agent):
    url = f"/api/agents/{agent.pk}/heartbeat"
    api.post(url, payloads.heartbeat(), format="json")
    Agent.objects.filter(pk=agent.pk).update(last_heartbeat_at=timezone.now() - timedelta(hours=1))
    api.post(url, payloads.heartbeat(), format="json")  # kept in Redis only
    assert agents_mark_stale_offline() == 0
    agent.refresh_from_db()
    assert agent.status == AgentStatus.ONLINE


def test_a_web_request_flushes_when_the_periodic_flush_is_overdue(settings, api, agent):
    settings.HEARTBEAT_FLUSH_OVERDUE_SECONDS = 0
    url = f"/api/agents/{agent.pk}/heartbeat"
    api.post(url, payloads.heartbeat(), format="json")
    Agent.objects.filter(pk=agent.pk).update(last_heartbeat_at=None)
    api.post(url, payloads.heartbeat(), format="json")  # pending since now
    time.sleep(1.1)
    api.post(url, payloads.heartbeat(), format="json")  # the oldest is over a second old: flush
    agent.refresh_from_db()
    assert agent.last_heartbeat_at is not None


def test_a_heartbeat_that_differs_takes_the_full_path(api, agent):
    r = api.post(f"/api/agents/{agent.pk}/heartbeat", payloads.heartbeat(az="us-east-1b"), format="json")
    assert r.status_code == 200
    agent.refresh_from_db()
    assert agent.az == "us-east-1b"
    other = api.post(f"/api/agents/{agent.pk}/heartbeat", payloads.heartbeat(instance_id="i-0other"), format="json")
    assert other.json()["recorded_as"] == "unknown_instance"  # never registered: recorded as nothing (issue 9)
    agent.refresh_from_db()
    assert agent.instance_id == "i-0aaa1111"


def test_a_full_path_heartbeat_that_changes_nothing_drops_no_cached_state(agent):
    """A terminating agent's heartbeats take the full path (their status is not the stored one) but change
    nothing: no process drops the agent's cached state; a changed AZ does."""
    from agents.services.heartbeats import HeartbeatPayload, agent_heartbeat

    Agent.objects.filter(pk=agent.pk).update(status=AgentStatus.TERMINATING)
    agent.refresh_from_db()
    redis = hot_client()
    redis.delete("sb:epoch:agents:log")
    same = HeartbeatPayload(status="online", instance_id="i-0aaa1111", instance_type=agent.instance_type,
                            mode="spot", az="us-east-1a")
    assert agent_heartbeat(agent=agent, payload=same) == "primary"
    agent.refresh_from_db()
    assert agent.status == AgentStatus.TERMINATING
    assert not redis.exists("sb:epoch:agents:log")
    moved = HeartbeatPayload(status="online", instance_id="i-0aaa1111", instance_type=agent.instance_type,
                             mode="spot", az="us-east-1b")
    agent_heartbeat(agent=agent, payload=moved)
    assert [f["k"] for _, f in redis.xrange("sb:epoch:agents:log")] == [str(agent.pk)]


def test_settings_change_shows_in_the_cached_config(api, agent):
    url = f"/api/agents/{agent.pk}/config"
    assert api.get(url).json()["auto_switch_enabled"] is False
    agent_settings_update(agent=agent, changes={"auto_switch_enabled": True, "replica_count": 2})
    config = api.get(url).json()
    assert config["auto_switch_enabled"] is True and config["replica_count"] == 2


def test_a_new_command_reaches_a_poll_that_had_cached_none(api, agent):
    SpotPoolFactory(id="t3.medium.us-east-1b", az="us-east-1b")
    url = f"/api/agents/{agent.pk}/pending-commands?instance_id=i-0aaa1111"
    assert api.get(url).json()["commands"] == []
    assert queries_of(lambda: api.get(url))[0] == 0  # "none" is cached
    command = command_issue(agent=agent, target_mode="ondemand")
    assert [c["id"] for c in api.get(url).json()["commands"]] == [str(command.pk)]
    assert api.get(url).json()["commands"] == []  # claimed once
    command.refresh_from_db()
    assert command.status == CommandStatus.DELIVERED


def test_a_fill_that_raced_with_an_invalidation_does_not_land():
    key = "sb:test:race"
    seen = hot_get(key)  # a reader looks before reading the database...
    hot_invalidate(key)  # ...a change commits meanwhile...
    assert hot_fill(key, seen=seen, value="stale", ttl=60) is False  # ...so its old answer is dropped
    assert hot_fill(key, seen=hot_get(key), value="fresh", ttl=60) is True
    assert hot_get(key) == "fresh"


def test_another_clients_agent_is_404_on_every_hot_route(other_api, agent):
    for name, call in calls(other_api, agent).items():
        assert call().status_code == 404, name


def test_rotated_token_stops_working_at_once_here(client_obj, agent):
    api = bearer(client_obj)
    assert api.get(f"/api/agents/{agent.pk}/config").status_code == 200
    new = client_token_rotate(client=client_obj)
    assert api.get(f"/api/agents/{agent.pk}/config").status_code == 401
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {new}")
    assert api.get(f"/api/agents/{agent.pk}/config").status_code == 200


def test_another_process_learns_of_a_change_through_the_epoch(settings, client_obj, agent):
    settings.HOT_LOCAL_CHECK_SECONDS = 0.05
    api = bearer(client_obj)
    assert api.get(f"/api/agents/{agent.pk}/config").status_code == 200
    # Another process deactivates the client: the database changes and the epoch is bumped, but
    # this process's cache is not touched directly.
    from clients.models import Client

    Client.objects.filter(pk=client_obj.pk).update(is_active=False)
    assert api.get(f"/api/agents/{agent.pk}/config").status_code == 200  # still trusted until...
    hot_invalidate(EPOCH_KEY)
    time.sleep(0.1)  # ...the next epoch check
    assert api.get(f"/api/agents/{agent.pk}/config").status_code == 403


def test_deactivated_client_is_refused(client_obj, agent):
    api = bearer(client_obj)
    assert api.get(f"/api/agents/{agent.pk}/config").status_code == 200
    client_obj.is_active = False
    client_obj.save()
    assert api.get(f"/api/agents/{agent.pk}/config").status_code == 403


# --- Redis down or hung: the same answers from the database, fast ------------------------------

def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class HungRedis:
    """Accepts connections and never answers: a hung Redis."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
                self.conns.append(conn)
            except OSError:
                continue

    def close(self):
        self.stop = True
        self.thread.join(timeout=2)
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.fixture(params=["down", "hung"])
def broken_redis(request, settings):
    hung = HungRedis() if request.param == "hung" else None
    port = hung.port if hung else _closed_port()
    settings.HOTCACHE_REDIS_URL = f"redis://127.0.0.1:{port}/0"
    hot_reset()
    token_cache.clear()
    yield request.param
    if hung:
        hung.close()
    hot_reset()


def test_every_hot_route_answers_from_the_database_without_redis(broken_redis, api, agent):
    SpotPoolFactory(id="t3.medium.us-east-1b", az="us-east-1b")
    started = time.monotonic()
    for _ in range(3):
        for name, call in calls(api, agent).items():
            assert call().status_code == 200, name
    command = command_issue(agent=agent, target_mode="ondemand")
    polled = api.get(f"/api/agents/{agent.pk}/pending-commands?instance_id=i-0aaa1111").json()["commands"]
    assert [c["id"] for c in polled] == [str(command.pk)]
    agent_settings_update(agent=agent, changes={"replica_count": 3})
    assert api.get(f"/api/agents/{agent.pk}/config").json()["replica_count"] == 3
    new = client_token_rotate(client=agent.client)
    assert api.get(f"/api/agents/{agent.pk}/config").status_code == 401
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {new}")
    assert api.get(f"/api/agents/{agent.pk}/config").status_code == 200
    # One socket timeout at most, then the breaker keeps Redis out of the way.
    assert time.monotonic() - started < 10


def test_validate_answers_with_the_cache_unreachable(settings, api):
    """The throttle's cache is fail-soft: the installer's check still answers."""
    from django.core.cache import caches

    settings.CACHES = {
        "default": {
            "BACKEND": "spotbackend.cache.FailSoftRedisCache",
            "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
            "OPTIONS": {"socket_timeout": 0.2, "socket_connect_timeout": 0.2},
        }
    }
    caches._settings = None
    try:
        for _ in range(3):
            assert api.get("/api/client/validate").status_code == 200
    finally:
        from spotbackend.cache import FailSoftRedisCache

        FailSoftRedisCache._down_until = 0.0


def test_no_redis_configured_means_short_lived_token_answers(settings, client_obj, agent):
    settings.HOTCACHE_REDIS_URL = ""
    settings.HOT_LOCAL_CHECK_SECONDS = 0.05
    hot_reset()
    token_cache.clear()
    api = bearer(client_obj)
    assert api.get(f"/api/agents/{agent.pk}/config").status_code == 200
    from clients.models import Client

    Client.objects.filter(pk=client_obj.pk).update(is_active=False)  # not through the cache hooks
    time.sleep(0.1)
    assert api.get(f"/api/agents/{agent.pk}/config").status_code == 403


def test_redis_holds_nothing_it_cannot_lose():
    """Every hot key has a TTL: a lost invalidation is bounded in time."""
    hot_invalidate("sb:test:ttl")
    assert 0 < hot_client().ttl("sb:test:ttl")
    hot_fill("sb:test:ttl2", seen=None, value="x", ttl=30)
    assert 0 < hot_client().ttl("sb:test:ttl2") <= 30


def as_if_preloaded() -> None:
    """This process preloaded its local layers a moment ago (before the agents of the test existed):
    what it has not seen is read one key at a time, from Redis first."""
    from agents.cache import _owners_preloaded
    from spotbackend.hotcache import LocalCache

    _owners_preloaded.set()
    for cache in LocalCache._all:
        cache.loaded_at = time.monotonic()


def test_agent_owner_is_shared_through_redis(client_obj, agent):
    """A process that never saw the agent learns its owner from Redis, without a query."""
    from agents.cache import agent_cache_clear_local, agent_owner_get

    as_if_preloaded()  # this process loaded the owners before the agent registered
    assert agent_owner_get(agent_pk=agent.pk) == client_obj.pk  # one query, then shared
    agent_cache_clear_local()  # another process: empty local map
    as_if_preloaded()
    with CaptureQueriesContext(connection) as ctx:
        assert agent_owner_get(agent_pk=agent.pk) == client_obj.pk
    assert len(ctx.captured_queries) == 0


def test_a_starting_process_loads_every_owner_in_one_query(client_obj, other_client):
    from agents.cache import agent_cache_clear_local, agent_owner_get

    agents = AgentFactory.create_batch(5, client=client_obj) + AgentFactory.create_batch(5, client=other_client)
    agent_cache_clear_local()
    with CaptureQueriesContext(connection) as ctx:
        owners = [agent_owner_get(agent_pk=a.pk) for a in agents]
    assert owners == [a.client_id for a in agents]
    assert len(ctx.captured_queries) == 1


@pytest.mark.parametrize("name", ["heartbeat", "config", "pending", "pricing"])
def test_a_starting_process_preloads_its_local_layers(api, client_obj, agent, name):
    """After a restart (or an epoch change) one query per layer serves every agent, not one each."""
    others = [AgentFactory(client=client_obj, instance_id=f"i-0bbb000{n}", az="us-east-1a", current_mode="spot")
              for n in range(4)]
    fleet = [agent, *others]

    def call(a):
        return {
            "heartbeat": lambda: api.post(f"/api/agents/{a.pk}/heartbeat",
                                          payloads.heartbeat(instance_id=a.instance_id), format="json"),
            "config": lambda: api.get(f"/api/agents/{a.pk}/config"),
            "pending": lambda: api.get(f"/api/agents/{a.pk}/pending-commands?instance_id={a.instance_id}"),
            "pricing": lambda: api.post(f"/api/agents/{a.pk}/pricing-report",
                                        payloads.pricing_v4(instance_id=a.instance_id), format="json"),
        }[name]

    for a in fleet:
        call(a)()  # the database holds what the calls report (a pricing report records the agent's pool)
    hot_reset()  # a new process: nothing local
    hot_client().flushdb()  # ...and Redis cold too, so only the preload can answer
    counts = [queries_of(call(a))[0] for a in fleet]
    assert counts[1:] == [0, 0, 0, 0], counts  # the first call loaded the whole layer
    assert counts[0] <= 4  # the token, the owners and the layer itself (two for pending commands)


def test_a_registered_agent_costs_no_owner_query(api, client_obj):
    from agents.cache import agent_cache_clear_local

    r = api.post("/api/agents/register", payloads.register_v4(token=client_obj.token), format="json")
    agent_id = r.json()["agent_id"]
    agent_cache_clear_local()
    api.get(f"/api/agents/{agent_id}/config")  # fills the config cache
    agent_cache_clear_local()
    as_if_preloaded()
    count, _ = queries_of(lambda: api.get(f"/api/agents/{agent_id}/config"))
    assert count == 0


def test_a_registration_warms_the_shared_caches(api, client_obj):
    """The first heartbeat, poll and config of a newly registered agent find Redis warm."""
    from agents.cache import agent_cache_clear_local

    r = api.post("/api/agents/register", payloads.register_v4(token=client_obj.token), format="json")
    agent_id = r.json()["agent_id"]
    agent_cache_clear_local()  # another process, which never saw this agent
    from spotbackend.hotcache import LocalCache

    LocalCache.clear_all()
    as_if_preloaded()
    assert api.get("/api/client/validate").status_code == 200  # this process learns the token once
    for name, call in {
        "heartbeat": lambda: api.post(f"/api/agents/{agent_id}/heartbeat", payloads.heartbeat(), format="json"),
        "config": lambda: api.get(f"/api/agents/{agent_id}/config"),
        "pending": lambda: api.get(f"/api/agents/{agent_id}/pending-commands?instance_id=i-0aaa1111"),
    }.items():
        count, _ = queries_of(call)
        assert count == 0, name


def test_a_fill_that_raced_an_epoch_change_is_not_kept_locally():
    """A value read under one epoch must not be kept after a change moved it (it may be older)."""
    from spotbackend.hotcache import LocalCache

    cache = LocalCache("sb:test:epoch")
    try:
        assert cache.get("k") is None  # a miss under the current epoch; the caller reads the database...
        cache.bump()  # ...while a change moves the epoch (here or on another host)
        LocalCache._checked_at = float("-inf")
        LocalCache.check_epochs()
        cache.put("k", "old")  # ...and the caller's fill arrives afterwards
        assert cache.get("k") is None
        cache.put("k", "new")  # read after the change: kept
        assert cache.get("k") == "new"
    finally:
        LocalCache._all.remove(cache)
