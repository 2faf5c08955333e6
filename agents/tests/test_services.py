"""Services of the agent's normal life, without HTTP."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.models import Agent, Command, Instance, OnDemandPriceSample, SpotPool, SpotPriceSample, SystemEvent
from agents.services.commands import NoSpotPool, command_issue, command_mark_executed, commands_claim_pending
from agents.services.pools import pool_parse_id, pool_select, region_of_az
from agents.services.ondemand import ondemand_price_get
from agents.services.pricing import PoolQuote, PricingReport, pricing_is_fallback, pricing_report_record
from agents.services.registration import HeartbeatPayload, RegisterPayload, agent_heartbeat, agent_register
from agents.services.switches import savings_impact
from agents.tests.factories import AgentFactory, CommandFactory, ReplicaFactory, SpotPoolFactory, TerminationEventFactory

pytestmark = pytest.mark.django_db


def reg(client, instance_id, logical="web-1", mode="spot", az="us-east-1a"):
    return agent_register(
        client=client,
        payload=RegisterPayload(instance_id=instance_id, logical_agent_id=logical, mode=mode, az=az,
                                instance_type="t3.medium", region="us-east-1", hostname="h"),
    )


class TestRegister:
    def test_identity_is_client_and_logical_id(self, client_obj, other_client):
        a1, created1 = reg(client_obj, "i-1")
        a2, created2 = reg(client_obj, "i-1")
        b, _ = reg(other_client, "i-1")
        assert created1 and not created2 and a1.pk == a2.pk
        assert b.pk != a1.pk  # same logical id under another client is another agent

    def test_logical_id_defaults_to_instance_id(self, client_obj):
        agent, _ = reg(client_obj, "i-9", logical="")
        assert agent.logical_agent_id == "i-9"

    def test_new_instance_becomes_the_only_primary(self, client_obj):
        agent, _ = reg(client_obj, "i-1")
        agent2, _ = reg(client_obj, "i-2", az="us-east-1b")
        assert agent2.pk == agent.pk and agent2.instance_id == "i-2"
        states = dict(Instance.objects.filter(agent=agent).values_list("instance_id", "state"))
        assert states == {"i-1": "replaced", "i-2": "primary"}
        assert Instance.objects.filter(agent=agent, is_primary=True).count() == 1

    def test_replaced_instance_coming_back_does_not_steal_primary(self, client_obj):
        reg(client_obj, "i-1")
        reg(client_obj, "i-2")
        agent, _ = reg(client_obj, "i-1")  # systemd restarted the agent on the old instance
        assert agent.instance_id == "i-2"
        old = Instance.objects.get(agent=agent, instance_id="i-1")
        assert old.state == "replaced" and old.last_seen_at is not None
        assert SystemEvent.objects.filter(agent=agent, event_type="non_primary_registered").exists()

    def test_replica_registering_does_not_steal_primary(self, client_obj):
        agent, _ = reg(client_obj, "i-1")
        ReplicaFactory(agent=agent, instance_id="i-r", status="ready")
        agent, _ = reg(client_obj, "i-r")
        assert agent.instance_id == "i-1"

    def test_unknown_values_do_not_overwrite(self, client_obj):
        agent, _ = reg(client_obj, "i-1")
        agent_register(client=client_obj, payload=RegisterPayload(instance_id="i-1", logical_agent_id="web-1",
                                                                   instance_type="unknown", az="unknown"))
        agent.refresh_from_db()
        assert agent.instance_type == "t3.medium" and agent.az == "us-east-1a"

    def test_database_refuses_two_primaries_and_two_open_commands(self, client_obj):
        agent = AgentFactory(client=client_obj)
        with pytest.raises(IntegrityError), transaction.atomic():
            Instance.objects.create(agent=agent, client=client_obj, instance_id="i-x", started_at=timezone.now())
        CommandFactory(agent=agent)
        with pytest.raises(IntegrityError), transaction.atomic():
            CommandFactory(agent=agent)

    def test_database_refuses_bad_enum(self, client_obj):
        agent = AgentFactory(client=client_obj)
        with pytest.raises(IntegrityError), transaction.atomic():
            Agent.objects.filter(pk=agent.pk).update(status="sleeping")


class TestHeartbeat:
    def test_missing_fields_never_overwrite(self, client_obj):
        agent, _ = reg(client_obj, "i-1")
        agent_heartbeat(agent=agent, payload=HeartbeatPayload(status="online"))
        agent.refresh_from_db()
        assert (agent.instance_type, agent.az, agent.current_mode) == ("t3.medium", "us-east-1a", "spot")

    def test_non_primary_heartbeat_changes_nothing(self, client_obj):
        reg(client_obj, "i-1")
        agent, _ = reg(client_obj, "i-2", mode="ondemand")
        before = Agent.objects.filter(pk=agent.pk).values("instance_id", "current_mode", "status", "az").get()
        out = agent_heartbeat(agent=agent, payload=HeartbeatPayload(status="disabled", instance_id="i-1", mode="spot",
                                                                    az="us-east-1c"))
        assert out == "non_primary"
        after = Agent.objects.filter(pk=agent.pk).values("instance_id", "current_mode", "status", "az").get()
        assert before == after

    def test_offline_without_id_marks_offline_when_alone(self, client_obj):
        agent, _ = reg(client_obj, "i-1")
        assert agent_heartbeat(agent=agent, payload=HeartbeatPayload(status="offline")) == "primary"
        agent.refresh_from_db()
        assert agent.status == "offline"

    def test_heartbeat_does_not_end_switching(self, client_obj):
        agent, _ = reg(client_obj, "i-1")
        Agent.objects.filter(pk=agent.pk).update(status="switching")
        agent.refresh_from_db()
        agent_heartbeat(agent=agent, payload=HeartbeatPayload(status="online", instance_id="i-1"))
        agent.refresh_from_db()
        assert agent.status == "switching"


class TestCommands:
    def test_claimed_once_in_priority_order(self, client_obj):
        agent = AgentFactory(client=client_obj, current_mode="ondemand")
        low = command_issue(agent=agent, target_mode="ondemand", priority=10, source="auto")
        high = command_issue(agent=agent, target_mode="ondemand", priority=60)
        low.refresh_from_db()
        assert low.status == "superseded"  # a newer command supersedes the pending one
        assert [c.pk for c in commands_claim_pending(agent=agent, instance_id="i-a")] == [high.pk]
        assert commands_claim_pending(agent=agent, instance_id="i-b") == []
        high.refresh_from_db()
        assert high.delivered_instance_id == "i-a" and high.status == "delivered"

    def test_delivered_command_blocks_a_new_one(self, client_obj):
        agent = AgentFactory(client=client_obj)
        command_issue(agent=agent, target_mode="ondemand")
        commands_claim_pending(agent=agent)
        from spotbackend.exceptions import Conflict

        with pytest.raises(Conflict):
            command_issue(agent=agent, target_mode="ondemand")

    def test_spot_command_gets_concrete_pool_excluding_current(self, client_obj):
        current = SpotPoolFactory(az="us-east-1a", latest_price=Decimal("0.001"))
        SpotPoolFactory(az="us-east-1b", latest_price=Decimal("0.02"))
        SpotPoolFactory(az="us-east-1c", latest_price=Decimal("0.01"))
        agent = AgentFactory(client=client_obj, current_mode="spot", current_pool=current)
        command = command_issue(agent=agent, target_mode="spot", target_pool_id="")
        assert command.target_pool_id == "t3.medium.us-east-1c"

    def test_spot_command_without_any_pool_is_refused(self, client_obj):
        agent = AgentFactory(client=client_obj, current_mode="ondemand")
        with pytest.raises(NoSpotPool):
            command_issue(agent=agent, target_mode="spot")
        assert Command.objects.count() == 0

    def test_executed_closes_and_repeat_keeps_outcome(self, client_obj):
        agent = AgentFactory(client=client_obj)
        cmd = command_issue(agent=agent, target_mode="ondemand")
        commands_claim_pending(agent=agent)
        command_mark_executed(agent=agent, command_id=cmd.pk, success=False, message="launch failed")
        command_mark_executed(agent=agent, command_id=cmd.pk, success=True)
        cmd.refresh_from_db()
        assert cmd.status == "failed" and cmd.is_open is None
        agent.refresh_from_db()
        assert agent.status == "online"


class TestPools:
    def test_parse_and_region(self):
        assert pool_parse_id("t3.medium.us-east-1b") == ("t3.medium", "us-east-1b")
        assert pool_parse_id("nonsense") is None
        assert region_of_az("us-east-1b") == "us-east-1"
        assert region_of_az("eu-west-2a") == "eu-west-2"

    def test_select_ranks_risk_then_price_and_skips_stale_cooldown_avoid(self):
        now = timezone.now()
        SpotPoolFactory(az="us-east-1a", latest_price=Decimal("0.005"), risk_recommendation="caution")
        SpotPoolFactory(az="us-east-1b", latest_price=Decimal("0.010"), risk_recommendation="safe")
        SpotPoolFactory(az="us-east-1c", latest_price=Decimal("0.001"), risk_recommendation="avoid")
        SpotPoolFactory(az="us-east-1d", latest_price=Decimal("0.002"), latest_price_at=now - timedelta(days=2))
        cooling = SpotPoolFactory(az="us-east-1e", latest_price=Decimal("0.003"))
        # Cooldown comes from notices (agents/services/market.py): two clients agree on this one.
        for _ in range(2):
            TerminationEventFactory(pool=cooling, detected_at=now - timedelta(minutes=1))
        choice = pool_select(instance_type="t3.medium", region="us-east-1")
        assert choice.pool.pk == "t3.medium.us-east-1b" and choice.target_mode == "spot"
        choice = pool_select(instance_type="t3.medium", region="us-east-1", exclude_pool_ids=("t3.medium.us-east-1b",))
        assert choice.pool.pk == "t3.medium.us-east-1a"
        safe = SpotPool.objects.get(pk="t3.medium.us-east-1b")
        choice = pool_select(instance_type="t3.medium", region="us-east-1", exclude_pool_ids=(safe.pk,), max_risk_of=safe)
        assert choice.pool is None and choice.target_mode == "ondemand" and "on-demand" in choice.reason


class TestPricing:
    def test_report_twice_stores_samples_once(self, client_obj):
        agent = AgentFactory(client=client_obj)
        at = timezone.now()
        report = PricingReport(
            instance_id=agent.instance_id, instance_type="t3.medium", region="us-east-1", az="us-east-1a",
            mode="spot", pool_id="t3.medium.us-east-1a", on_demand_price=Decimal("0.0416"),
            spot_pools=[PoolQuote("t3.medium.us-east-1a", "t3.medium", "us-east-1a", Decimal("0.0125")),
                        PoolQuote("t3.medium.us-east-1b", "t3.medium", "us-east-1b", Decimal("0.00001"))],
            collected_at=at,
        )
        pricing_report_record(agent=agent, report=report)
        pricing_report_record(agent=agent, report=report)
        assert SpotPriceSample.objects.count() == 2 and OnDemandPriceSample.objects.count() == 1
        assert SpotPool.objects.get(pk="t3.medium.us-east-1b").latest_price == Decimal("0.000010")
        # An older report does not move the latest price back.
        older = PricingReport(spot_pools=[PoolQuote("t3.medium.us-east-1b", "", "", Decimal("0.5"))],
                              collected_at=at - timedelta(hours=1))
        pricing_report_record(agent=agent, report=older)
        assert SpotPool.objects.get(pk="t3.medium.us-east-1b").latest_price == Decimal("0.000010")

    def test_real_ondemand_preferred_over_fallback(self):
        now = timezone.now()
        OnDemandPriceSample.objects.create(instance_type="t3.medium", region="us-east-1", price=Decimal("0.0416"),
                                           observed_at=now - timedelta(hours=1))
        OnDemandPriceSample.objects.create(instance_type="t3.medium", region="us-east-1", price=Decimal("0.1"),
                                           is_fallback=True, observed_at=now)
        assert ondemand_price_get(instance_type="t3.medium", region="us-east-1") == Decimal("0.0416")

    def test_fallback_detection(self):
        assert pricing_is_fallback(on_demand=Decimal("0.1"), spot_prices=[], v3=False)
        assert not pricing_is_fallback(on_demand=Decimal("0.0416"), spot_prices=[], v3=False)
        assert pricing_is_fallback(on_demand=Decimal("0.03"), spot_prices=[Decimal("0.01")], v3=True)


def test_savings_impact_definition():
    assert savings_impact(old_hourly=Decimal("0.0416"), new_hourly=Decimal("0.0125")) == Decimal("0.0291")
    assert savings_impact(old_hourly=Decimal("0.0125"), new_hourly=Decimal("0.0416")) == Decimal("-0.0291")
    assert savings_impact(old_hourly=None, new_hourly=Decimal("0.01")) == Decimal("0")


def test_a_delivered_command_without_answer_expires_and_frees_the_agent(client_obj):
    agent = AgentFactory(client=client_obj)
    first = command_issue(agent=agent, target_mode="ondemand")
    commands_claim_pending(agent=agent)
    Command.objects.filter(pk=first.pk).update(delivered_at=timezone.now() - timedelta(hours=1))
    second = command_issue(agent=agent, target_mode="ondemand")
    first.refresh_from_db()
    agent.refresh_from_db()
    assert first.status == "expired" and first.success is False and first.is_open is None
    assert second.status == "pending" and agent.status == "online"
    assert SystemEvent.objects.filter(agent=agent, event_type="command_expired").count() == 1
