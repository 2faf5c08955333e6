"""agents/services/price_writes.py: pricing reports written behind (queued in Redis, written in bulk by
the flush task), at once when write-behind is off or Redis is unavailable, never lost on a failed flush."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import OnDemandPriceSample, SpotPool, SpotPriceSample
from agents.services import price_writes
from agents.services.price_writes import PENDING, PENDING_SINCE, PriceFacts, prices_flush
from agents.tests import payloads as P
from agents.tests.factories import AgentFactory
from agents.tests.test_hotpath import broken_redis  # noqa: F401  (fixture: Redis down or hung)
from spotbackend.hotcache import hot_client

pytestmark = pytest.mark.django_db

A1, B1, C1 = "t3.medium.us-east-1a", "t3.medium.us-east-1b", "t3.medium.us-east-1c"


@pytest.fixture
def agent(client_obj):
    return AgentFactory(client=client_obj, instance_id="i-0aaa1111", az="us-east-1a", current_mode="spot")


def report(api, agent, when, **prices):
    body = P.pricing_v4(collected_at=when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                        prices={f"us-east-1{k}": v for k, v in prices.items()} or None)
    r = api.post(f"/api/agents/{agent.pk}/pricing-report", body, format="json")
    assert r.status_code == 200, r.content
    return r.json()


def stored():
    return {
        "samples": sorted((s.pool_id, s.observed_at, s.price) for s in SpotPriceSample.objects.all()),
        "latest": sorted(SpotPool.objects.values_list("pk", "latest_price", "latest_price_at")),
        "ondemand": sorted(OnDemandPriceSample.objects.values_list("instance_type", "region", "price", "observed_at")),
    }


def test_a_report_is_queued_and_the_flush_stores_it(api, agent):
    at = timezone.now().replace(microsecond=0) - timedelta(minutes=1)
    answer = report(api, agent, at)
    assert answer["pools"] == 3
    assert hot_client().llen(PENDING) == 1
    assert SpotPriceSample.objects.count() == 0  # not yet: written behind
    assert prices_flush() == 3
    assert hot_client().llen(PENDING) == 0 and not hot_client().exists(PENDING_SINCE)
    state = stored()
    assert [(pid, price) for pid, _, price in state["samples"]] == [
        (A1, Decimal("0.012500")), (B1, Decimal("0.013100")), (C1, Decimal("0.011900"))]
    assert all(observed == at for _, observed, _ in state["samples"])
    assert [(pid, price, when) for pid, price, when in state["latest"]] == [
        (A1, Decimal("0.012500"), at), (B1, Decimal("0.013100"), at), (C1, Decimal("0.011900"), at)]
    assert state["ondemand"] == [("t3.medium", "us-east-1", Decimal("0.041600"), at)]


def assert_written_at_once(api, agent):
    at = timezone.now().replace(microsecond=0) - timedelta(minutes=1)
    report(api, agent, at)
    state = stored()
    assert len(state["samples"]) == 3 and [row[2] for row in state["latest"]] == [at, at, at]
    assert len(state["ondemand"]) == 1


def test_written_at_once_when_write_behind_is_off(settings, api, agent):
    settings.PRICE_WRITE_BEHIND = False
    assert_written_at_once(api, agent)


def test_written_at_once_when_redis_is_down_or_hung(broken_redis, api, agent):  # noqa: F811
    assert_written_at_once(api, agent)


def test_many_reports_in_one_flush_cost_a_few_statements(api, client_obj):
    """50 reports from 50 agents on the same pools: one flush stores every sample, moves each pool to
    its newest price, and its statement count does not grow with the number of reports."""
    base = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    agents = AgentFactory.create_batch(50, client=client_obj, instance_type="t3.medium", region="us-east-1")
    for n, a in enumerate(agents):
        report(client_api(client_obj), a, base + timedelta(seconds=n), a=0.01 + n / 10000, b=0.02, c=0.03)
    with CaptureQueriesContext(connection) as ctx:
        assert prices_flush() == 150
    assert len(ctx.captured_queries) <= 12
    assert SpotPriceSample.objects.count() == 150 and OnDemandPriceSample.objects.count() == 50
    pool = SpotPool.objects.get(pk=A1)
    assert pool.latest_price_at == base + timedelta(seconds=49) and pool.latest_price == Decimal("0.014900")


def client_api(client_obj):
    from conftest import bearer

    return bearer(client_obj)


def test_the_web_request_writes_nothing_when_queued(api, agent):
    report(api, agent, timezone.now())  # the pools exist now; the agent's pool is recorded
    prices_flush()
    report(api, agent, timezone.now())  # the steady state: nothing about the agent changes any more
    with CaptureQueriesContext(connection) as ctx:
        report(api, agent, timezone.now())
    writes = [q["sql"] for q in ctx.captured_queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert writes == []
    # The agent's facts come from this process's cache; at most the stored on-demand quote is read.
    assert len(ctx.captured_queries) <= 1


def test_a_failed_flush_keeps_the_reports_for_the_next(api, agent, monkeypatch):
    at = timezone.now().replace(microsecond=0) - timedelta(minutes=1)
    report(api, agent, at)
    real = price_writes.price_facts_write

    def broken(batch):
        raise RuntimeError("database gone")

    monkeypatch.setattr(price_writes, "price_facts_write", broken)
    with pytest.raises(RuntimeError):
        prices_flush()
    assert hot_client().llen(PENDING) == 1 and SpotPriceSample.objects.count() == 0
    monkeypatch.setattr(price_writes, "price_facts_write", real)
    assert prices_flush() == 3
    assert SpotPriceSample.objects.count() == 3


def test_a_late_task_is_replaced_by_the_web_request(settings, api, agent):
    """No worker flushing: the request that finds the oldest queued report too old flushes."""
    settings.HEARTBEAT_FLUSH_OVERDUE_SECONDS = 30
    at = timezone.now().replace(microsecond=0) - timedelta(minutes=2)
    report(api, agent, at)
    assert SpotPriceSample.objects.count() == 0
    hot_client().set(PENDING_SINCE, repr(timezone.now().timestamp() - 31))
    report(api, agent, at + timedelta(minutes=1))
    assert SpotPriceSample.objects.count() == 6 and hot_client().llen(PENDING) == 0


def test_facts_survive_the_queue_exactly():
    facts = PriceFacts(at=timezone.now(), region="us-east-1", spot=[(A1, Decimal("0.012345")), (B1, Decimal("1E-6"))],
                       ondemand=("t3.medium", "us-east-1", Decimal("0.0416"), True))
    again = PriceFacts.loads(facts.dumps())
    assert again == facts


def test_an_unreadable_queued_report_is_dropped_not_blocking(api, agent):
    hot_client().rpush(PENDING, "not json")
    report(api, agent, timezone.now() - timedelta(minutes=1))
    assert prices_flush() == 3
    assert hot_client().llen(PENDING) == 0


def test_the_reporting_agent_follows_a_switch_at_once(api, client_obj):
    """The agent's primary instance and mode are cached per process for pricing reports; a
    registration of the new instance drops them, so its first report is not a phantom's and records
    the new mode."""
    from agents.models import Agent, SystemEvent

    agent_id = api.post("/api/agents/register", P.register_v4(token=client_obj.token), format="json").json()["agent_id"]
    report(api, Agent.objects.get(pk=agent_id), timezone.now())  # caches the agent as i-0aaa1111, spot
    api.post("/api/agents/register", P.register_v4(token=client_obj.token, instance_id="i-0bbb2222", mode="ondemand"),
             format="json")
    r = api.post(f"/api/agents/{agent_id}/pricing-report",
                 P.pricing_v4(instance_id="i-0bbb2222", mode="spot", pool_id=C1), format="json")
    assert r.status_code == 200
    agent = Agent.objects.get(pk=agent_id)
    assert (agent.instance_id, agent.current_mode, agent.current_pool_id) == ("i-0bbb2222", "spot", C1)
    assert not SystemEvent.objects.filter(agent=agent, event_type="unknown_instance").exists()
