"""Every event kind is emitted where it happens (issue 20), as outbox rows of the client's subscribed
endpoints written in the event's own transaction: a rolled-back event leaves no delivery."""
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from agents.models import Replica
from agents.services.commands import command_queue_automatic
from agents.services.pool_policy import PoolChoice
from agents.services.replica_sweep import replicas_sweep
from agents.services.risk import pool_risk_analyze_all
from agents.tests.factories import AgentFactory, ReplicaFactory, SpotPoolFactory, TerminationEventFactory
from agents.tests.test_risk import now, pools  # noqa: F401  (fixtures)
from notifications.models import EventType, Notification
from notifications.services import webhook_endpoint_create, webhook_event_emit

pytestmark = pytest.mark.django_db

ALL = list(EventType.values)


def subscribe(client, events=ALL):
    return webhook_endpoint_create(client=client, url="https://hooks.example.com/all", events=list(events))


def deliveries(kind):
    return list(Notification.objects.filter(endpoint__isnull=False, kind=kind).order_by("pk"))


@pytest.fixture
def agent(client_obj):
    pool = SpotPoolFactory(az="us-east-1a")
    SpotPoolFactory(az="us-east-1b", risk_recommendation="safe")
    return AgentFactory(client=client_obj, current_pool=pool, hostname="web-1")


def test_rebalance_recommendation(api, agent, client_obj):
    endpoint = subscribe(client_obj)
    r = api.post(f"/api/agents/{agent.pk}/rebalance-recommendation",
                 {"instance_id": agent.instance_id, "detected_at": "2026-11-26T19:23:57"}, format="json")
    assert r.status_code == 200
    rows = deliveries("rebalance.recommendation")
    assert [(d.endpoint_id, d.payload["data"]["instance_id"]) for d in rows] == [(endpoint.pk, agent.instance_id)]
    # A repeat of the same recommendation is no new event.
    api.post(f"/api/agents/{agent.pk}/rebalance-recommendation",
             {"instance_id": agent.instance_id, "detected_at": "2026-11-26T19:23:57"}, format="json")
    assert len(deliveries("rebalance.recommendation")) == 1


def test_emergency_replica_created(api, agent, client_obj):
    subscribe(client_obj)
    body = {"instance_id": "i-0replica", "replica_type": "emergency", "parent_instance_id": agent.instance_id,
            "pool_id": "t3.medium.us-east-1a", "status": "ready"}
    assert api.post(f"/api/agents/{agent.pk}/replicas", body, format="json").status_code == 200
    rows = deliveries("replica.created")
    assert len(rows) == 1 and rows[0].payload["data"]["instance_id"] == "i-0replica"
    assert rows[0].payload["data"]["replica_id"] == str(Replica.objects.get().pk)


def test_emergency_replica_failed(agent, client_obj):
    subscribe(client_obj)
    replica = ReplicaFactory(agent=agent, replica_type="emergency", status="launching", instance_id="")
    later = timezone.now() + timedelta(hours=3)
    replicas_sweep(now=later)
    replica.refresh_from_db()
    assert replica.status == "terminated"
    rows = deliveries("replica.failed")
    assert len(rows) == 1 and rows[0].payload["data"]["replica_id"] == str(replica.pk)
    assert "stuck" in rows[0].payload["data"]["reason"]


def test_automatic_switch_and_not_in_dry_run(agent, client_obj):
    subscribe(client_obj)
    target = SpotPoolFactory(az="us-east-1c")
    now = timezone.now()
    assert command_queue_automatic(agent=agent, choice=PoolChoice(pool=target, reason="cheaper"), source="rebalance",
                                   reason="cheaper", now=now, dry_run=True) is not None
    assert deliveries("switch.automatic") == []
    command = command_queue_automatic(agent=agent, choice=PoolChoice(pool=target, reason="cheaper"),
                                      source="rebalance", reason="cheaper", now=now)
    rows = deliveries("switch.automatic")
    assert len(rows) == 1 and rows[0].payload["data"]["command_id"] == str(command.pk)
    assert rows[0].payload["data"]["target_pool_id"] == target.pk


def test_pool_risk_alert_to_the_clients_with_agents_in_the_pool(pools, now, client_obj, other_client):  # noqa: F811
    calm, risky = pools
    AgentFactory(client=client_obj, current_pool=risky)
    AgentFactory(client=other_client, current_pool=calm)
    mine, theirs = subscribe(client_obj), subscribe(other_client)
    TerminationEventFactory(pool=risky, detected_at=now - timedelta(hours=2))
    TerminationEventFactory(pool=risky, detected_at=now - timedelta(hours=3))
    assert pool_risk_analyze_all(now=now)["entered_avoid"] == [risky.pk]
    rows = deliveries("pool.risk_alert")
    assert [(d.endpoint_id, d.payload["data"]["pool_id"]) for d in rows] == [(mine.pk, risky.pk)]
    assert theirs.pk not in [d.endpoint_id for d in rows]


def test_an_event_rolled_back_leaves_no_delivery(client_obj):
    subscribe(client_obj)
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            assert webhook_event_emit(client_id=client_obj.pk, event_type="agent.offline", data={}) == 1
            raise RuntimeError("the event's transaction fails")
    assert not Notification.objects.exists()
