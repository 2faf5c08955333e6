from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from agents.models import Agent, SystemEvent
from agents.services.sweeps import agents_mark_stale_offline
from agents.tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


@override_settings(AGENT_HEARTBEAT_TIMEOUT=300)
def test_stale_agents_go_offline_with_one_event_each(client_obj, django_assert_max_num_queries):
    now = timezone.now()
    fresh = AgentFactory(client=client_obj, last_heartbeat_at=now - timedelta(seconds=299))
    stale = [AgentFactory(client=client_obj, status=s, last_heartbeat_at=now - timedelta(seconds=301))
             for s in ("online", "switching", "terminating", "disabled")]
    already = AgentFactory(client=client_obj, status="offline", last_heartbeat_at=now - timedelta(days=2))
    # lock+select, one update, one insert, one read of the clients' webhook endpoints (plus the transaction)
    with django_assert_max_num_queries(7):
        assert agents_mark_stale_offline(now=now) == 4
    statuses = dict(Agent.objects.values_list("pk", "status"))
    assert statuses[fresh.pk] == "online" and statuses[already.pk] == "offline"
    assert all(statuses[a.pk] == "offline" for a in stale)
    events = SystemEvent.objects.filter(event_type="agent_offline")
    assert sorted(e.agent_id for e in events) == sorted(a.pk for a in stale)
    e = events.get(agent=stale[1])
    assert e.client_id == client_obj.pk and e.severity == "warning"
    assert e.metadata["previous_status"] == "switching"


@override_settings(AGENT_HEARTBEAT_TIMEOUT=300)
def test_sweep_twice_changes_nothing_the_second_time(client_obj):
    now = timezone.now()
    AgentFactory(client=client_obj, last_heartbeat_at=now - timedelta(hours=1))
    assert agents_mark_stale_offline(now=now) == 1
    snapshot = list(Agent.objects.values_list("pk", "status", "updated_at"))
    assert agents_mark_stale_offline(now=now) == 0
    assert list(Agent.objects.values_list("pk", "status", "updated_at")) == snapshot
    assert SystemEvent.objects.count() == 1


@override_settings(AGENT_HEARTBEAT_TIMEOUT=300)
def test_sweep_works_in_batches(client_obj):
    now = timezone.now()
    for _ in range(5):
        AgentFactory(client=client_obj, last_heartbeat_at=now - timedelta(hours=1))
    assert agents_mark_stale_offline(now=now, batch=2) == 5
    assert not Agent.objects.exclude(status="offline").exists()
    assert SystemEvent.objects.count() == 5
