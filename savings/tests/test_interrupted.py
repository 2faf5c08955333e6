"""Issue 9, item 1: an instance's paid interval ends when it stops costing money. Every expected value
is computed by hand below. Market throughout: on-demand 0.04 USD/h, spot 0.01 USD/h, so a spot hour
saves 0.03 USD. The instances are written by the real services (notice, register, heartbeat, sweep)."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone

from agents.models import Agent, Instance
from agents.services.termination import Notice, termination_notice_handle
from agents.services.heartbeats import HeartbeatPayload, agent_heartbeat
from agents.services.registration import RegisterPayload, agent_register
from agents.services.sweeps import agents_mark_stale_offline
from agents.tests.factories import AgentFactory
from savings.models import SavingsSnapshot
from savings.services import savings_compute_day, savings_day_calculate
from savings.tests.helpers import at, instance, ondemand_price, pool, spot_price

pytestmark = pytest.mark.django_db
D = Decimal
DAY = date(2026, 1, 10)
NEXT = date(2026, 1, 11)
TERMINATION = at(10, 13, 39) + timedelta(seconds=20)  # 13:39:20 on DAY


@pytest.fixture
def fleet(client_obj):
    """One spot agent on pool us-east-1a since Jan 9 00:00, heartbeating until Jan 20."""
    p = pool("us-east-1a")
    ondemand_price("0.04", at(1))
    spot_price(p, "0.01", at(1))
    agent = AgentFactory(client=client_obj, with_instance=False, current_pool=p, current_mode="spot",
                         last_heartbeat_at=at(20))
    inst = instance(client_obj, agent=agent, mode="spot", p=p, start=at(9))
    Agent.objects.filter(pk=agent.pk).update(instance_id=inst.instance_id)
    agent.refresh_from_db()
    return agent, inst


def _notice(agent, inst, *, termination_time, seen_at):
    return termination_notice_handle(
        agent_id=agent.pk, notice=Notice(instance_id=inst.instance_id, termination_time=termination_time,
                                      detected_at=seen_at), now=seen_at)


def _clock(monkeypatch, moment):
    monkeypatch.setattr(timezone, "now", lambda: moment)


def test_interruption_never_replaced_ends_at_termination_time(client_obj, fleet):
    agent, inst = fleet
    _notice(agent, inst, termination_time=TERMINATION, seen_at=TERMINATION - timedelta(minutes=2))
    inst.refresh_from_db()
    assert inst.ended_at == TERMINATION and inst.state == "primary"
    snap = savings_compute_day(client=client_obj, day=DAY)
    # 00:00 -> 13:39:20 = 49,160 s = 13.6556 h; x 0.03 = 0.409667 -> 0.4097.
    assert snap.total_savings == D("0.4097")
    assert snap.spot_hours == D("13.66")
    # The day after: nothing (before the fix: 24 h x 0.03 = 0.72 every day).
    assert savings_compute_day(client=client_obj, day=NEXT).total_savings == D("0")


def test_interruption_replaced_hours_later(client_obj, fleet, monkeypatch):
    agent, inst = fleet
    _notice(agent, inst, termination_time=TERMINATION, seen_at=TERMINATION - timedelta(minutes=2))
    _clock(monkeypatch, at(10, 17, 10))  # the agent's next instance registers at 17:10
    agent_register(client=client_obj, payload=RegisterPayload(
        instance_id="i-next", logical_agent_id=agent.logical_agent_id, instance_type="t3.medium",
        region="us-east-1", az="us-east-1a", mode="spot"))
    monkeypatch.undo()
    Agent.objects.filter(pk=agent.pk).update(last_heartbeat_at=at(12))  # heartbeats until Jan 12 00:00
    inst.refresh_from_db()
    new = Instance.objects.get(agent=agent, instance_id="i-next")
    assert inst.ended_at == TERMINATION  # not 17:10: it stopped costing at its termination time
    assert new.started_at == at(10, 17, 10) and new.ended_at is None
    # Old 13:39:20 (49,160 s) + new 17:10 -> 24:00 (24,600 s) = 73,760 s = 20.4889 h; x 0.03 = 0.614667.
    assert savings_compute_day(client=client_obj, day=DAY).total_savings == D("0.6147")
    assert savings_compute_day(client=client_obj, day=NEXT).total_savings == D("0.7200")  # 24 h x 0.03


def test_replaced_before_the_termination_time_ends_at_the_takeover(client_obj, fleet, monkeypatch):
    agent, inst = fleet
    _notice(agent, inst, termination_time=TERMINATION, seen_at=TERMINATION - timedelta(minutes=2))
    _clock(monkeypatch, TERMINATION - timedelta(seconds=30))
    agent_register(client=client_obj, payload=RegisterPayload(
        instance_id="i-next", logical_agent_id=agent.logical_agent_id, mode="ondemand", instance_type="t3.medium",
        region="us-east-1", az="us-east-1b"))
    monkeypatch.undo()
    inst.refresh_from_db()
    assert inst.ended_at == TERMINATION - timedelta(seconds=30)  # 13:38:50, whichever is first


def test_interruption_across_midnight(client_obj, fleet):
    agent, inst = fleet
    _notice(agent, inst, termination_time=at(11, 0, 1), seen_at=at(10, 23, 59))
    assert savings_compute_day(client=client_obj, day=DAY).total_savings == D("0.7200")  # 24 h x 0.03
    # 00:00 -> 00:01 on Jan 11 = 1/60 h x 0.03 = 0.0005.
    assert savings_compute_day(client=client_obj, day=NEXT).total_savings == D("0.0005")


def test_notice_without_termination_time_ends_two_minutes_after_detection(client_obj, fleet):
    agent, inst = fleet
    _notice(agent, inst, termination_time=None, seen_at=at(10, 6))
    inst.refresh_from_db()
    assert inst.ended_at == at(10, 6, 2)
    assert savings_compute_day(client=client_obj, day=DAY).total_savings == D("0.1810")  # 6h02m = 6.0333 h x 0.03


@override_settings(AGENT_HEARTBEAT_TIMEOUT=300)
def test_silent_agent_earns_nothing_after_its_last_heartbeat(client_obj, fleet):
    agent, inst = fleet
    Agent.objects.filter(pk=agent.pk).update(last_heartbeat_at=at(10, 10))  # last sign of life 10:00
    # Before any sweep ran, the live figure already stops at 10:00: 10 h x 0.03 = 0.30.
    assert savings_day_calculate(client=client_obj, day=DAY, now=at(10, 11)).savings == D("0.30")
    assert agents_mark_stale_offline(now=at(10, 16)) == 1
    inst.refresh_from_db()
    assert inst.ended_at == at(10, 10)  # the sweep wrote the same end
    assert savings_compute_day(client=client_obj, day=DAY).total_savings == D("0.3000")
    assert savings_compute_day(client=client_obj, day=NEXT).total_savings == D("0")


def test_goodbye_heartbeat_ends_the_interval_and_a_return_reopens_it(client_obj, fleet, monkeypatch):
    agent, inst = fleet
    _clock(monkeypatch, at(10, 8))
    assert agent_heartbeat(agent=agent, payload=HeartbeatPayload(status="offline")) == "primary"
    inst.refresh_from_db()
    assert inst.ended_at == at(10, 8)
    monkeypatch.undo()
    assert savings_compute_day(client=client_obj, day=DAY).total_savings == D("0.2400")  # 8 h x 0.03
    agent.refresh_from_db()
    agent_heartbeat(agent=agent, payload=HeartbeatPayload(status="online", instance_id=inst.instance_id))
    inst.refresh_from_db()
    assert inst.ended_at is None  # it speaks again: it evidently kept running


def test_ondemand_only_day_saves_nothing(client_obj):
    ondemand_price("0.04", at(1))
    instance(client_obj, mode="ondemand", start=at(9))
    snap = savings_compute_day(client=client_obj, day=DAY)
    # 24 h on-demand: paid 24 x 0.04 = 0.96, the on-demand bill is the same 0.96, savings 0.
    assert snap.total_savings == D("0") and snap.average_savings_percent == D("0")
    assert snap.ondemand_hours == D("24.00") and snap.spot_hours == D("0")
    assert snap.actual_cost == D("0.9600") == snap.ondemand_cost


def test_recomputation_changes_nothing(client_obj, fleet):
    agent, inst = fleet
    _notice(agent, inst, termination_time=TERMINATION, seen_at=TERMINATION - timedelta(minutes=2))
    first = savings_compute_day(client=client_obj, day=DAY)
    second = savings_compute_day(client=client_obj, day=DAY)
    stored = SavingsSnapshot.objects.get(pk=first.pk)
    assert second.pk == first.pk and stored.updated_at == first.updated_at
    assert stored.total_savings == D("0.4097")


def test_dashboard_savings_and_stats_card_agree_with_the_intervals(api, client_obj, fleet):
    agent, inst = fleet
    _notice(agent, inst, termination_time=TERMINATION, seen_at=TERMINATION - timedelta(minutes=2))
    for day in (date(2026, 1, 9), DAY, NEXT):
        savings_compute_day(client=client_obj, day=day)
    # Jan 9: 24 h x 0.03 = 0.72; Jan 10: 0.4097 (above); Jan 11: 0; today and yesterday (live): 0.
    expected = 0.72 + 0.4097
    savings = api.get(f"/api/client/{client_obj.pk}/savings").json()
    stats = api.get(f"/api/client/{client_obj.pk}").json()
    assert savings["total_savings"] == pytest.approx(expected, abs=1e-9)
    assert stats["total_savings"] == pytest.approx(expected, abs=1e-9)
    assert {"month": "2026-01", "savings": pytest.approx(expected, abs=1e-9)} in savings["savings_by_month"]


def test_a_replica_earns_from_its_promotion_not_from_when_it_was_first_seen(client_obj, fleet, monkeypatch):
    from agents.tests.factories import ReplicaFactory

    agent, inst = fleet
    replica_row = ReplicaFactory(agent=agent, instance_id="i-replica", status="ready", replica_type="manual",
                                 pool=inst.pool)
    _clock(monkeypatch, at(10, 6))  # the replica's agent registers at 06:00 beside the primary: not primary
    agent_register(client=client_obj, payload=RegisterPayload(
        instance_id="i-replica", logical_agent_id=agent.logical_agent_id, mode="spot", instance_type="t3.medium",
        region="us-east-1", az="us-east-1a"))
    assert Instance.objects.get(agent=agent, instance_id="i-replica").state == "replaced"
    from agents.services.replicas import replica_promote

    _clock(monkeypatch, at(10, 12))
    replica_promote(agent=agent, replica_id=replica_row.pk, now=at(10, 12))  # promoted at noon
    monkeypatch.undo()
    replica = Instance.objects.get(agent=agent, instance_id="i-replica")
    assert replica.started_at == at(10, 12) and replica.state == "primary"
    # Old primary 00:00-12:00 + replica 12:00-24:00 = 24 h x 0.03 = 0.72 (not 30 h: no double count).
    assert savings_compute_day(client=client_obj, day=DAY).total_savings == D("0.7200")


def test_the_data_migration_corrects_existing_rows(client_obj, fleet):
    import importlib

    from django.apps import apps as global_apps

    from agents.models import TerminationEvent

    migration = importlib.import_module("agents.migrations.0002_end_interrupted_and_silent_instances")
    agent, inst = fleet
    # As written before the fix: a notice at 13:39:20, the instance still open.
    TerminationEvent.objects.create(agent=agent, client=client_obj, instance_id=inst.instance_id,
                                    event_type="termination_notice", notice_key="k", termination_time=TERMINATION,
                                    detected_at=TERMINATION - timedelta(minutes=2))
    Agent.objects.filter(pk=agent.pk).update(last_heartbeat_at=TERMINATION - timedelta(seconds=10))
    silent = AgentFactory(client=client_obj, with_instance=False, status="offline", last_heartbeat_at=at(10, 9))
    silent_inst = instance(client_obj, agent=silent, mode="spot", p=inst.pool, start=at(9))
    migration.forwards(global_apps, None)
    inst.refresh_from_db()
    silent_inst.refresh_from_db()
    assert inst.ended_at == TERMINATION and silent_inst.ended_at == at(10, 9)
    # 13:39:20 (0.4097 as above) + 9 h x 0.03 = 0.27 -> 0.6797.
    assert savings_compute_day(client=client_obj, day=DAY).total_savings == D("0.6797")
