"""The agent's frequent calls (heartbeat, config, pending-commands, pricing report) through HTTP: no
query in the steady state (Django's cache on the real Redis), one or two with Redis unreachable, every
write seen by the next call, and the per-process shortcuts (tokens trusted for AUTH_CACHE_SECONDS,
unchanged heartbeats buffered for HEARTBEAT_BUFFER_SECONDS) within their documented bounds
(docs/ARCHITECTURE.md §8)."""
import socket
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import Agent, AgentStatus
from agents.services.agent_settings import agent_settings_update
from agents.services.commands import command_issue
from agents.services.heartbeats import heartbeats_flush
from agents.services.sweeps import agents_mark_stale_offline
from agents.tests import payloads
from agents.tests.factories import AgentFactory
from clients import services as client_services
from clients.models import Client
from clients.services import AUTH_CACHE_SECONDS, client_token_rotate
from conftest import bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(client_obj):
    """Last heard a minute ago (buffered times are whole seconds: a heartbeat within the second of the
    stored one moves nothing)."""
    return AgentFactory(client=client_obj, instance_id="i-0aaa1111", instance_type="t3.medium", az="us-east-1a",
                        current_mode="spot", last_heartbeat_at=timezone.now() - timedelta(minutes=1))


@pytest.fixture
def buffered(settings):
    """Heartbeats buffered as in production; the buffer's thread never writes during the test (an
    hour), the test writes with heartbeats_flush()."""
    settings.HEARTBEAT_BUFFER_SECONDS = 3600
    yield
    heartbeats_flush()


def calls(api, agent):
    return {
        "heartbeat": lambda: api.post(f"/api/agents/{agent.pk}/heartbeat", payloads.heartbeat(), format="json"),
        "config": lambda: api.get(f"/api/agents/{agent.pk}/config"),
        "pending": lambda: api.get(f"/api/agents/{agent.pk}/pending-commands?instance_id=i-0aaa1111"),
    }


def last_seen(agent):
    return Agent.objects.values_list("last_heartbeat_at", flat=True).get(pk=agent.pk)


def caches_down() -> dict:
    down = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2}}
    return {"default": down, "agents": down}


@pytest.fixture
def redis_down(settings):
    settings.CACHES = caches_down()


@pytest.mark.parametrize("name", ["heartbeat", "config", "pending"])
def test_the_steady_state_call_costs_no_query(buffered, api, agent, name):
    call = calls(api, agent)[name]
    call()  # the token is read once, then trusted; the cache is filled
    with CaptureQueriesContext(connection) as ctx:
        assert call().status_code == 200
    assert len(ctx.captured_queries) == 0, [q["sql"] for q in ctx.captured_queries]


@pytest.mark.parametrize("name,least,most", [("heartbeat", 0, 0), ("config", 1, 1), ("pending", 1, 2)])
def test_with_redis_unreachable_a_call_costs_at_most_a_query_or_two(buffered, redis_down, api, agent, name, least, most):
    """The heartbeat's signature hint is kept per process: an unchanged heartbeat needs no Redis."""
    call = calls(api, agent)[name]
    call()
    with CaptureQueriesContext(connection) as ctx:
        assert call().status_code == 200
    assert least <= len(ctx.captured_queries) <= most, [q["sql"] for q in ctx.captured_queries]


def test_a_row_changed_elsewhere_is_caught_by_the_flush_and_read_again(buffered, api, agent):
    """Another process (or service) moves the row; this process's hint still matches the heartbeat, which
    is buffered; the flush finds the row changed, applies the full heartbeat rules and forgets the hint,
    so the next heartbeat reads the row."""
    heartbeat = calls(api, agent)["heartbeat"]
    heartbeat()  # the hint: the row's signature
    Agent.objects.filter(pk=agent.pk).update(status=AgentStatus.OFFLINE)
    assert heartbeat().status_code == 200
    assert Agent.objects.get(pk=agent.pk).status == AgentStatus.OFFLINE  # buffered on the hint
    heartbeats_flush()
    assert Agent.objects.get(pk=agent.pk).status == AgentStatus.ONLINE  # the row decided, with every rule
    with CaptureQueriesContext(connection) as ctx:
        assert heartbeat().status_code == 200
    assert len(ctx.captured_queries) >= 1  # hint forgotten: the row is read again


def test_an_agent_deleted_by_another_process_is_404_after_this_process_flushes(buffered, api, agent):
    heartbeat = calls(api, agent)["heartbeat"]
    heartbeat()
    Agent.objects.filter(pk=agent.pk).delete()  # as another process would: this one's hint stays
    assert heartbeat().status_code == 200  # answered on the hint, within the buffer's bound
    heartbeats_flush()  # nothing to write: the agent is gone, and so is the hint
    assert heartbeat().status_code == 404


def test_a_buffered_heartbeat_is_written_by_the_flush_and_never_moves_backwards(buffered, api, agent):
    before = last_seen(agent)
    r = calls(api, agent)["heartbeat"]()
    assert r.status_code == 200 and r.json()["recorded_as"] == "primary"
    assert last_seen(agent) == before  # buffered: not yet written
    assert heartbeats_flush() == 1
    written = last_seen(agent)
    assert written > before and written.microsecond == 0  # to the second
    Agent.objects.filter(pk=agent.pk).update(last_heartbeat_at=written.replace(year=written.year + 1))
    calls(api, agent)["heartbeat"]()
    heartbeats_flush()
    assert last_seen(agent).year == written.year + 1  # an older time never overwrites a newer one
    assert heartbeats_flush() == 0  # written once


def test_a_heartbeat_that_changes_anything_is_written_at_once(buffered, api, agent):
    r = api.post(f"/api/agents/{agent.pk}/heartbeat", payloads.heartbeat(az="us-east-1b"), format="json")
    assert r.status_code == 200
    assert Agent.objects.get(pk=agent.pk).az == "us-east-1b"
    assert heartbeats_flush() == 0


def test_a_swept_agent_comes_back_online_on_its_next_heartbeat(buffered, api, agent):
    Agent.objects.filter(pk=agent.pk).update(last_heartbeat_at=agent.last_heartbeat_at.replace(year=2000))
    assert agents_mark_stale_offline() == 1
    calls(api, agent)["heartbeat"]()
    assert Agent.objects.get(pk=agent.pk).status == AgentStatus.ONLINE  # not buffered: the status changed


def test_a_failed_flush_keeps_the_heartbeats_for_the_next(buffered, api, agent, monkeypatch):
    calls(api, agent)["heartbeat"]()
    before = last_seen(agent)
    with monkeypatch.context() as m:
        m.setattr("agents.services.heartbeats.Agent.objects.filter", lambda *a, **k: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            heartbeats_flush()
    assert last_seen(agent) == before
    assert heartbeats_flush() == 1 and last_seen(agent) > before


def test_the_next_call_sees_every_write(api, agent, django_capture_on_commit_callbacks):
    assert calls(api, agent)["config"]().json()["replica_count"] != 3  # cached
    with django_capture_on_commit_callbacks(execute=True):
        agent_settings_update(agent=agent, changes={"replica_count": 3})
    assert calls(api, agent)["config"]().json()["replica_count"] == 3
    assert calls(api, agent)["pending"]().json()["commands"] == []
    assert calls(api, agent)["pending"]().json()["commands"] == []  # "none" is cached
    with django_capture_on_commit_callbacks(execute=True):
        command = command_issue(agent=agent, target_mode="ondemand")
    polled = calls(api, agent)["pending"]().json()["commands"]
    assert [c["id"] for c in polled] == [str(command.pk)]
    assert calls(api, agent)["pending"]().json()["commands"] == []  # handed out once


def test_a_poll_that_read_none_before_a_command_committed_cannot_hide_it(api, agent, client_obj,
                                                                         django_capture_on_commit_callbacks):
    """The race a cache of "none" invites: the poll read the database before the command committed and
    fills the cache after it; the command's own entry wins (agents/cache.py)."""
    from agents import cache as agent_cache

    with django_capture_on_commit_callbacks(execute=True):
        command = command_issue(agent=agent, target_mode="ondemand")
    agent_cache.commands_none_remember(agent.pk, client_obj.pk)  # the late fill of the poll that read none
    polled = calls(api, agent)["pending"]().json()["commands"]
    assert [c["id"] for c in polled] == [str(command.pk)]


def test_an_entry_an_outage_kept_unchanged_is_not_trusted_after_it(settings, api, agent,
                                                                    django_capture_on_commit_callbacks):
    """Redis unreachable while a command is issued and the settings change: the cache's "none" and
    config entries stay as they were. The first call that reaches Redis again deletes them."""
    from agents.cache import breaker

    assert calls(api, agent)["pending"]().json()["commands"] == []  # "none" in Redis
    assert calls(api, agent)["config"]().json()["replica_count"] != 3  # the config in Redis
    up = settings.CACHES
    settings.CACHES = caches_down()
    with django_capture_on_commit_callbacks(execute=True):
        command = command_issue(agent=agent, target_mode="ondemand")
    with django_capture_on_commit_callbacks(execute=True):
        agent_settings_update(agent=Agent.objects.get(pk=agent.pk), changes={"replica_count": 3})
    settings.CACHES = up
    breaker.reset()  # as BREAKER_RESET_SECONDS later
    assert [c["id"] for c in calls(api, agent)["pending"]().json()["commands"]] == [str(command.pk)]
    assert calls(api, agent)["config"]().json()["replica_count"] == 3


def test_a_deleted_agent_is_404_at_once(api, agent):
    from agents.services.registration import agents_delete

    for call in calls(api, agent).values():
        assert call().status_code == 200
    agents_delete(agent_ids=[agent.pk])
    for name, call in calls(api, agent).items():
        assert call().status_code == 404, name


def test_a_pricing_report_is_seen_by_the_dashboards_next_switch(api, client_obj):
    """The new user's first minutes: the agent's first report, then at once the dashboard's "switch to
    spot" (which needs a fresh pool price) and the pricing view."""
    body = payloads.register_v4(token=client_obj.token, mode="ondemand")
    agent_id = api.post("/api/agents/register", body, format="json").json()["agent_id"]
    now = timezone.now().replace(tzinfo=None).isoformat()
    report = payloads.pricing_v4(mode="ondemand", pool_id="", collected_at=now)
    assert api.post(f"/api/agents/{agent_id}/pricing-report", report, format="json").status_code == 200
    pricing = api.get("/api/client/instances/i-0aaa1111/pricing").json()
    assert len(pricing["pools"]) == 3, pricing
    switch = api.post(f"/api/agents/{agent_id}/issue-switch-command", {"target_mode": "spot"}, format="json")
    assert switch.status_code == 200, switch.content


def test_another_clients_agent_is_404_on_every_agent_call(buffered, api, other_api, agent):
    """Also once the owner's calls filled every cache (the Redis entries and this process's heartbeat
    hint): each carries the owner, and another client's call never matches it."""
    for name, call in calls(api, agent).items():
        assert call().status_code == 200, name
    for name, call in calls(other_api, agent).items():
        assert call().status_code == 404, name
    r = other_api.post(f"/api/agents/{agent.pk}/pricing-report", payloads.pricing_v4(), format="json")
    assert r.status_code == 404


def test_a_rotated_token_is_refused_here_at_once(client_obj, agent):
    api = bearer(client_obj)
    assert calls(api, agent)["config"]().status_code == 200
    new = client_token_rotate(client=client_obj)
    assert calls(api, agent)["config"]().status_code == 401
    assert calls(bearer_token(new), agent)["config"]().status_code == 200


def bearer_token(token):
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


@pytest.mark.parametrize("change,status", [({"is_active": False}, 403), ({"token_hash": "0" * 64}, 401)])
def test_a_change_made_by_another_process_is_refused_within_the_bound(monkeypatch, client_obj, agent, change, status):
    """Another process's change reaches this one through no signal: the cached answer is trusted for
    AUTH_CACHE_SECONDS, never longer (the cache's clock is moved, not waited for)."""
    now = [1000.0]
    monkeypatch.setattr(client_services, "clock", lambda: now[0])
    api = bearer(client_obj)
    assert calls(api, agent)["config"]().status_code == 200
    Client.objects.filter(pk=client_obj.pk).update(**change)  # an UPDATE: no signal, as on another host
    now[0] += AUTH_CACHE_SECONDS - 0.1
    assert calls(api, agent)["config"]().status_code == 200
    now[0] += 0.2
    assert calls(api, agent)["config"]().status_code == status


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_every_agent_call_answers_with_redis_unreachable(redis_down, api, agent):
    """Redis down (a closed port): every read is a miss and the database answers; the failed-token
    throttle treats it as a miss too. After the first failure the breaker keeps Redis out of the way."""
    from agents.cache import breaker

    for _ in range(2):
        for name, call in calls(api, agent).items():
            assert call().status_code == 200, name
    assert breaker.opened
    command = command_issue(agent=agent, target_mode="ondemand")
    assert [c["id"] for c in calls(api, agent)["pending"]().json()["commands"]] == [str(command.pk)]
    assert api.post(f"/api/agents/{agent.pk}/pricing-report", payloads.pricing_v4(), format="json").status_code == 200
    assert bearer_token("sb_wrong").get(f"/api/agents/{agent.pk}/config").status_code == 401


def test_cache_hits_misses_and_breaker_openings_are_counted(settings, api, agent):
    """spotbackend_cache_lookups_total and spotbackend_cache_breaker_openings_total (docs/OPERATIONS.md)."""
    from spotbackend.metrics import REGISTRY

    def value(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    hits = value("spotbackend_cache_lookups_total", entry="config", result="hit")
    misses = value("spotbackend_cache_lookups_total", entry="config", result="miss")
    calls(api, agent)["config"]()
    calls(api, agent)["config"]()
    assert value("spotbackend_cache_lookups_total", entry="config", result="miss") == misses + 1
    assert value("spotbackend_cache_lookups_total", entry="config", result="hit") == hits + 1
    openings = value("spotbackend_cache_breaker_openings_total")
    errors = value("spotbackend_cache_lookups_total", entry="config", result="error")
    settings.CACHES = caches_down()
    calls(api, agent)["config"]()
    calls(api, agent)["config"]()
    assert value("spotbackend_cache_breaker_openings_total") == openings + 1
    assert value("spotbackend_cache_breaker_open") == 1
    assert value("spotbackend_cache_lookups_total", entry="config", result="error") == errors + 2
