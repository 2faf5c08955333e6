"""agents/services/commands.py: issue, claim, close and expire switch commands."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from agents.models import Command, SystemEvent
from agents.services.commands import NoSpotPool, command_issue, command_mark_executed, commands_claim_pending
from agents.tests.factories import AgentFactory, SpotPoolFactory

pytestmark = pytest.mark.django_db


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
        from spotbackend.exceptions import ConflictError

        with pytest.raises(ConflictError):
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
