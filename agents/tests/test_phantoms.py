"""Issue 9, item 3: only real instances exist. A heartbeat, pricing report, termination notice or
rebalance recommendation naming an instance id never registered for the agent adds no instance and
no termination event, changes nothing on the agent, and leaves one system event per phantom and hour."""
import pytest

from agents.models import Agent, Instance, Replica, SystemEvent, TerminationEvent
from agents.tests import payloads as P

pytestmark = pytest.mark.django_db
PHANTOM = "i-0phantom999"


@pytest.fixture
def agent(api, client_obj):
    r = api.post("/api/agents/register", P.register_v4(token=client_obj.token), format="json")
    return Agent.objects.get(pk=r.json()["agent_id"])


def _snapshot(agent):
    agent = Agent.objects.get(pk=agent.pk)
    return {f: getattr(agent, f) for f in ("instance_id", "status", "current_mode", "current_pool_id",
                                           "instance_type", "az", "last_heartbeat_at", "updated_at",
                                           "last_termination_notice_at", "last_rebalance_recommendation_at")}


def _phantom_events(agent):
    return SystemEvent.objects.filter(agent=agent, event_type="unknown_instance")


def test_phantom_heartbeats_add_no_instance_and_log_once(api, agent, client_obj):
    before = _snapshot(agent)
    for _ in range(5):  # a chatty phantom
        r = api.post(f"/api/agents/{agent.pk}/heartbeat", P.heartbeat(instance_id=PHANTOM, mode="ondemand"),
                     format="json")
        assert r.status_code == 200 and r.json()["recorded_as"] == "unknown_instance"
    assert not Instance.objects.filter(instance_id=PHANTOM).exists()
    assert _snapshot(agent) == before
    assert _phantom_events(agent).count() == 1
    listed = api.get(f"/api/client/{client_obj.pk}/instances").json()["instances"]
    assert [i["id"] for i in listed] == ["i-0aaa1111"]


def test_known_replaced_instance_still_counts_as_seen(api, agent, client_obj):
    # The old instance after a switch keeps heartbeating (docs/API.md §5): it is known, so it is recorded.
    api.post("/api/agents/register", P.register_v4(token=client_obj.token, instance_id="i-0bbb2222"), format="json")
    r = api.post(f"/api/agents/{agent.pk}/heartbeat", P.heartbeat(instance_id="i-0aaa1111"), format="json")
    assert r.json()["recorded_as"] == "non_primary"
    assert Instance.objects.get(instance_id="i-0aaa1111").last_seen_at is not None
    assert not _phantom_events(agent).exists()


def test_phantom_pricing_report_changes_nothing_on_the_agent(api, agent):
    before = _snapshot(agent)
    r = api.post(f"/api/agents/{agent.pk}/pricing-report", P.pricing_v4(instance_id=PHANTOM, mode="ondemand",
                                                                         pool_id=None), format="json")
    assert r.status_code == 200
    assert not Instance.objects.filter(instance_id=PHANTOM).exists()
    after = _snapshot(agent)
    assert {k: v for k, v in after.items() if k != "updated_at"} == {
        k: v for k, v in before.items() if k != "updated_at"}
    assert _phantom_events(agent).count() == 1


def test_phantom_termination_notice_records_no_event_and_launches_no_replica(api, agent):
    before = _snapshot(agent)
    for _ in range(3):
        r = api.post(f"/api/agents/{agent.pk}/termination-imminent",
                     {"instance_id": PHANTOM, "termination_time": "2026-11-26T19:25:57Z"}, format="json")
        assert r.status_code == 200
        assert r.json()["create_emergency_replica"] is False
    assert not TerminationEvent.objects.exists() and not Replica.objects.exists()
    assert not Instance.objects.filter(instance_id=PHANTOM).exists()
    assert _snapshot(agent) == before
    assert _phantom_events(agent).count() == 1


def test_phantom_rebalance_recommendation_records_nothing(api, agent):
    before = _snapshot(agent)
    r = api.post(f"/api/agents/{agent.pk}/rebalance-recommendation", {"instance_id": PHANTOM}, format="json")
    assert r.status_code == 200 and r.json()["action"] == "monitor"
    assert not TerminationEvent.objects.exists()
    assert _snapshot(agent) == before
    assert _phantom_events(agent).count() == 1


def test_the_data_migration_removes_phantom_rows_only(agent):
    import importlib

    from django.apps import apps as global_apps
    from django.utils import timezone

    from agents.tests.factories import ReplicaFactory, SwitchFactory

    migration = importlib.import_module("agents.migrations.0005_remove_phantom_instances")
    now = timezone.now()

    def row(instance_id, started, ended):
        return Instance.objects.create(agent=agent, client=agent.client, instance_id=instance_id, state="replaced",
                                       is_primary=None, started_at=started, ended_at=ended)

    row("i-phantom", now, now)  # what a heartbeat from an unknown id used to add
    row("i-replica", now, now)
    ReplicaFactory(agent=agent, instance_id="i-replica")
    row("i-switched", now, now)
    SwitchFactory(agent=agent, old_instance_id="i-0aaa1111", new_instance_id="i-switched")
    row("i-old", now.replace(year=now.year - 1), now)  # was primary for a year: kept
    migration.forwards(global_apps, None)
    assert sorted(Instance.objects.filter(agent=agent).values_list("instance_id", flat=True)) == [
        "i-0aaa1111", "i-old", "i-replica", "i-switched"]
