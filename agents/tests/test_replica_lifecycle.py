"""Issue 9, item 5: the replica lifecycle has no dead ends. The sweep (a periodic job, every 5 min)
ends replicas stuck in launching/syncing for REPLICA_STUCK_MINUTES (default 15) and promoting ones
whose switch closed without landing, and promotes a ready emergency replica whose notice's deadline
passed. Each is a system event."""
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from agents.models import Agent, Instance, Replica, SystemEvent
from agents.services.replica_sweep import replicas_sweep
from agents.states import replica_transition
from agents.tests.factories import AgentFactory, CommandFactory, ReplicaFactory, SpotPoolFactory, TerminationEventFactory
from spotbackend.schedule import scheduled_jobs

pytestmark = pytest.mark.django_db


def _age(replica, minutes):
    Replica.objects.filter(pk=replica.pk).update(updated_at=timezone.now() - timedelta(minutes=minutes))


def test_default_and_schedule():
    assert settings.REPLICA_STUCK_MINUTES == 15
    job = next(j for j in scheduled_jobs() if j.task == "agents.periodic.replica_lifecycle_sweep")
    assert job.crontab == {"minute": "*/5", "hour": "*"}


@override_settings(REPLICA_STUCK_MINUTES=15)
def test_stuck_launching_and_syncing_replicas_end_with_a_reason(client_obj):
    agent = AgentFactory(client=client_obj)
    old_launching = ReplicaFactory(agent=agent, status="launching", replica_type="manual", instance_id="")
    old_syncing = ReplicaFactory(agent=agent, status="syncing")
    young = ReplicaFactory(agent=agent, status="launching", replica_type="manual", instance_id="")
    _age(old_launching, 16)
    _age(old_syncing, 16)
    _age(young, 14)
    assert replicas_sweep() == {"expired": 2, "promoted": 0}
    for replica in (old_launching, old_syncing):
        replica.refresh_from_db()
        assert replica.status == "terminated" and "more than 15 min" in replica.status_reason
        assert replica.terminated_at is not None
    assert Replica.objects.get(pk=young.pk).status == "launching"
    events = SystemEvent.objects.filter(event_type="replica_expired", agent=agent)
    assert events.count() == 2
    assert replicas_sweep() == {"expired": 0, "promoted": 0}  # idempotent


def test_a_stuck_replica_no_longer_blocks_a_new_emergency_replica(api, client_obj):
    pool = SpotPoolFactory(az="us-east-1a")
    agent = AgentFactory(client=client_obj, current_pool=pool)
    stuck = ReplicaFactory(agent=agent, status="launching", instance_id="")
    _age(stuck, 60)
    replicas_sweep()
    r = api.post(f"/api/agents/{agent.pk}/termination-imminent",
                 {"instance_id": agent.instance_id, "termination_time": "2026-11-26T19:25:57Z"}, format="json")
    assert r.json()["create_emergency_replica"] is True  # was: wait_for_replica, for ever


def test_promoting_replica_whose_switch_failed_ends(client_obj):
    agent = AgentFactory(client=client_obj)
    command = CommandFactory(agent=agent, status="failed", is_open=None, success=False)
    replica = ReplicaFactory(agent=agent, status="launching", replica_type="manual", instance_id="")
    replica_transition(replica=replica, to="promoting")
    Replica.objects.filter(pk=replica.pk).update(promote_command=command)
    waiting = ReplicaFactory(agent=AgentFactory(client=client_obj), status="launching", instance_id="")
    replica_transition(replica=waiting, to="promoting")
    Replica.objects.filter(pk=waiting.pk).update(promote_command=CommandFactory(agent=waiting.agent))
    assert replicas_sweep()["expired"] == 1
    replica.refresh_from_db()
    assert replica.status == "terminated" and "ended failed" in replica.status_reason
    assert Replica.objects.get(pk=waiting.pk).status == "promoting"  # its switch is still open


def test_ready_emergency_replica_past_the_deadline_is_promoted(client_obj):
    agent = AgentFactory(client=client_obj, status="terminating")
    now = timezone.now()
    notice = TerminationEventFactory(agent=agent, termination_time=now - timedelta(seconds=5), status="handling")
    replica = ReplicaFactory(agent=agent, status="ready", instance_id="i-emerg", termination_event=notice,
                             pool=SpotPoolFactory(az="us-east-1b"))
    not_yet = ReplicaFactory(
        agent=AgentFactory(client=client_obj), status="ready", instance_id="i-later",
        termination_event=TerminationEventFactory(termination_time=now + timedelta(minutes=1)))
    assert replicas_sweep(now=now) == {"expired": 0, "promoted": 1}
    replica.refresh_from_db()
    agent.refresh_from_db()
    assert replica.status == "promoted" and agent.instance_id == "i-emerg" and agent.status == "online"
    assert Instance.objects.get(agent=agent, is_primary=True).instance_id == "i-emerg"
    assert SystemEvent.objects.filter(event_type="replica_promoted_overdue", agent=agent).count() == 1
    assert Replica.objects.get(pk=not_yet.pk).status == "ready"


def test_the_periodic_task_runs_the_sweep(client_obj):
    from agents.periodic import replica_lifecycle_sweep

    stuck = ReplicaFactory(agent=AgentFactory(client=client_obj), status="syncing")
    _age(stuck, 30)
    assert replica_lifecycle_sweep() == {"expired": 1, "promoted": 0}
    assert Agent.objects.count() == 1
