"""The interruption policy, pinned cell by cell (issue 3, item 7):
instance mode x notice type x replica state x TERMINATION_REPLICA_AUTO_CREATE x auto_switch_enabled.

Pools: the agent's own t3.medium.us-east-1a (unrated), 1b `safe`, 1c unrated and cheapest, 1d
cheapest of all but `avoid`. Live replicas sit in 1c. Columns of the expectation: the decision
(`action`), whether the agent is told to launch a replica, the target pool suffix ("" = none),
whether an automatic switch command is queued."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from agents.models import AgentStatus, Command, TerminationEvent
from agents.services.rebalance import rebalance_recommendation_handle
from agents.services.termination import Notice, termination_notice_handle
from agents.tests.factories import AgentFactory, ReplicaFactory, SpotPoolFactory

pytestmark = pytest.mark.django_db

# mode, notice, replica, auto_create, auto_switch -> action, create_emergency_replica, target, command
TABLE = [
    ('spot', 'termination', 'none', 'on', 'on', 'create_emergency_replica', True, 'b', False),
    ('spot', 'termination', 'none', 'on', 'off', 'create_emergency_replica', True, 'b', False),
    ('spot', 'termination', 'none', 'off', 'on', 'queue_failover_switch', False, 'b', True),
    ('spot', 'termination', 'none', 'off', 'off', 'notify_only', False, 'b', False),
    ('spot', 'termination', 'launching', 'on', 'on', 'wait_for_replica', False, 'c', False),
    ('spot', 'termination', 'launching', 'on', 'off', 'wait_for_replica', False, 'c', False),
    ('spot', 'termination', 'launching', 'off', 'on', 'wait_for_replica', False, 'c', False),
    ('spot', 'termination', 'launching', 'off', 'off', 'wait_for_replica', False, 'c', False),
    ('spot', 'termination', 'ready', 'on', 'on', 'promote_replica', False, 'c', False),
    ('spot', 'termination', 'ready', 'on', 'off', 'promote_replica', False, 'c', False),
    ('spot', 'termination', 'ready', 'off', 'on', 'promote_replica', False, 'c', False),
    ('spot', 'termination', 'ready', 'off', 'off', 'promote_replica', False, 'c', False),
    ('spot', 'rebalance', 'none', 'on', 'on', 'switch', False, 'b', True),
    ('spot', 'rebalance', 'none', 'on', 'off', 'switch', False, 'b', False),
    ('spot', 'rebalance', 'none', 'off', 'on', 'switch', False, 'b', True),
    ('spot', 'rebalance', 'none', 'off', 'off', 'switch', False, 'b', False),
    ('spot', 'rebalance', 'launching', 'on', 'on', 'switch', False, 'b', True),
    ('spot', 'rebalance', 'launching', 'on', 'off', 'switch', False, 'b', False),
    ('spot', 'rebalance', 'launching', 'off', 'on', 'switch', False, 'b', True),
    ('spot', 'rebalance', 'launching', 'off', 'off', 'switch', False, 'b', False),
    ('spot', 'rebalance', 'ready', 'on', 'on', 'switch', False, 'b', True),
    ('spot', 'rebalance', 'ready', 'on', 'off', 'switch', False, 'b', False),
    ('spot', 'rebalance', 'ready', 'off', 'on', 'switch', False, 'b', True),
    ('spot', 'rebalance', 'ready', 'off', 'off', 'switch', False, 'b', False),
    ('ondemand', 'termination', 'none', 'on', 'on', 'create_emergency_replica', True, 'b', False),
    ('ondemand', 'termination', 'none', 'on', 'off', 'create_emergency_replica', True, 'b', False),
    ('ondemand', 'termination', 'none', 'off', 'on', 'queue_failover_switch', False, 'b', True),
    ('ondemand', 'termination', 'none', 'off', 'off', 'notify_only', False, 'b', False),
    ('ondemand', 'termination', 'launching', 'on', 'on', 'wait_for_replica', False, 'c', False),
    ('ondemand', 'termination', 'launching', 'on', 'off', 'wait_for_replica', False, 'c', False),
    ('ondemand', 'termination', 'launching', 'off', 'on', 'wait_for_replica', False, 'c', False),
    ('ondemand', 'termination', 'launching', 'off', 'off', 'wait_for_replica', False, 'c', False),
    ('ondemand', 'termination', 'ready', 'on', 'on', 'promote_replica', False, 'c', False),
    ('ondemand', 'termination', 'ready', 'on', 'off', 'promote_replica', False, 'c', False),
    ('ondemand', 'termination', 'ready', 'off', 'on', 'promote_replica', False, 'c', False),
    ('ondemand', 'termination', 'ready', 'off', 'off', 'promote_replica', False, 'c', False),
    ('ondemand', 'rebalance', 'none', 'on', 'on', 'monitor', False, '', False),
    ('ondemand', 'rebalance', 'none', 'on', 'off', 'monitor', False, '', False),
    ('ondemand', 'rebalance', 'none', 'off', 'on', 'monitor', False, '', False),
    ('ondemand', 'rebalance', 'none', 'off', 'off', 'monitor', False, '', False),
    ('ondemand', 'rebalance', 'launching', 'on', 'on', 'monitor', False, '', False),
    ('ondemand', 'rebalance', 'launching', 'on', 'off', 'monitor', False, '', False),
    ('ondemand', 'rebalance', 'launching', 'off', 'on', 'monitor', False, '', False),
    ('ondemand', 'rebalance', 'launching', 'off', 'off', 'monitor', False, '', False),
    ('ondemand', 'rebalance', 'ready', 'on', 'on', 'monitor', False, '', False),
    ('ondemand', 'rebalance', 'ready', 'on', 'off', 'monitor', False, '', False),
    ('ondemand', 'rebalance', 'ready', 'off', 'on', 'monitor', False, '', False),
    ('ondemand', 'rebalance', 'ready', 'off', 'off', 'monitor', False, '', False),]


def test_the_table_covers_every_cell():
    cells = {row[:5] for row in TABLE}
    assert len(cells) == len(TABLE) == 2 * 2 * 3 * 2 * 2


@pytest.mark.parametrize("mode,notice,replica,auto_create,auto_switch,action,create,target,command", TABLE)
def test_policy_cell(settings, mode, notice, replica, auto_create, auto_switch, action, create, target, command):
    settings.TERMINATION_REPLICA_AUTO_CREATE = auto_create == "on"
    own = SpotPoolFactory(az="us-east-1a", latest_price=Decimal("0.0125"))
    SpotPoolFactory(az="us-east-1b", latest_price=Decimal("0.0131"), risk_recommendation="safe")
    SpotPoolFactory(az="us-east-1c", latest_price=Decimal("0.0119"))
    SpotPoolFactory(az="us-east-1d", latest_price=Decimal("0.0050"), risk_recommendation="avoid")
    agent = AgentFactory(
        current_mode=mode,
        current_pool=own if mode == "spot" else None,
        auto_switch_enabled=auto_switch == "on",
    )
    if replica != "none":
        ReplicaFactory(agent=agent, status=replica, pool_id="t3.medium.us-east-1c",
                       instance_id="i-replica" if replica == "ready" else "")
    expected_pool = f"t3.medium.us-east-1{target}" if target else ""

    n = Notice(instance_id=agent.instance_id, termination_time=None)
    now = timezone.now()
    if notice == "termination":
        decision = termination_notice_handle(agent_id=agent.pk, notice=n, now=now)
        assert (decision.action, decision.create_emergency_replica, decision.target_pool_id) == (
            action, create, expected_pool)
        assert decision.instructions
        agent.refresh_from_db()
        # A promotion moved the agent onto its replica; otherwise the agent is going away.
        assert agent.status == (AgentStatus.ONLINE if action == "promote_replica" else AgentStatus.TERMINATING)
        # The repeat answers the stored decision and never asks for a replica again.
        again = termination_notice_handle(agent_id=agent.pk, notice=Notice(instance_id=n.instance_id),
                                          now=now + timedelta(seconds=5))
        assert (again.action, again.create_emergency_replica, again.target_pool_id) == (action, False, expected_pool)
    else:
        decision = rebalance_recommendation_handle(agent=agent, notice=n, now=now)
        assert (decision.action, False, decision.target_pool_id) == (action, create, expected_pool)
        assert decision.reason
        again = rebalance_recommendation_handle(agent=agent, notice=Notice(instance_id=n.instance_id),
                                                now=now + timedelta(seconds=30))
        assert (again.action, again.target_pool_id) == (action, expected_pool)
        agent.refresh_from_db()
        assert agent.status == AgentStatus.ONLINE  # a recommendation never terminates anything
    assert TerminationEvent.objects.filter(agent=agent).count() == 1
    commands = list(Command.objects.filter(agent=agent))
    assert len(commands) == (1 if command else 0)
    if command:
        assert commands[0].priority < 50 and commands[0].target_pool_id == expected_pool
