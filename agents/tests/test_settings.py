"""Dashboard settings, toggle-enabled and the mutual-exclusivity rule (docs/ARCHITECTURE.md §4)."""
import pytest
from spotbackend.exceptions import InvalidInput

from agents.models import Agent, Replica, SystemEvent
from agents.services.agent_settings import agent_enabled_toggle, agent_settings_update
from agents.tests.factories import AgentFactory, ReplicaFactory


@pytest.fixture
def agent(client_obj):
    return AgentFactory(client=client_obj)


def live_replicas(agent, replica_type):
    return set(
        Replica.objects.filter(agent=agent, replica_type=replica_type)
        .exclude(status__in=["terminated", "promoted"])
        .values_list("pk", flat=True)
    )


# --- the service -----------------------------------------------------------------------------


def test_enabling_manual_replicas_turns_auto_switch_off_and_ends_automatic_replicas(agent):
    agent.auto_switch_enabled = True
    agent.save()
    emergency = ReplicaFactory(agent=agent, replica_type="emergency", status="ready")
    launching = ReplicaFactory(agent=agent, replica_type="emergency", status="launching")
    promoted = ReplicaFactory(agent=agent, replica_type="emergency", status="promoted")
    manual = ReplicaFactory(agent=agent, replica_type="manual", status="ready")
    stranger = ReplicaFactory(replica_type="emergency", status="ready")  # another agent's: untouched

    # The dashboard sends its whole form: auto-switch still says true.
    agent = agent_settings_update(agent=agent, changes={"manual_replica_enabled": True, "auto_switch_enabled": True})

    agent.refresh_from_db()
    assert agent.manual_replica_enabled is True and agent.auto_switch_enabled is False
    assert live_replicas(agent, "emergency") == set()
    for r in (emergency, launching):
        r.refresh_from_db()
        assert r.status == "terminated" and r.terminated_at is not None
    promoted.refresh_from_db()
    assert promoted.status == "promoted"
    assert live_replicas(agent, "manual") == {manual.pk}
    stranger.refresh_from_db()
    assert stranger.status == "ready"
    event = SystemEvent.objects.get(agent=agent, event_type="mutual_exclusivity_enforced")
    assert set(event.metadata["terminated_replica_ids"]) == {str(emergency.pk), str(launching.pk)}
    assert SystemEvent.objects.filter(agent=agent, event_type="agent_settings_changed").count() == 1


def test_enabling_auto_switch_turns_manual_replicas_off_and_ends_manual_replicas(agent):
    agent.manual_replica_enabled = True
    agent.save()
    manual = ReplicaFactory(agent=agent, replica_type="manual", status="syncing")
    emergency = ReplicaFactory(agent=agent, replica_type="emergency", status="ready")

    agent_settings_update(agent=agent, changes={"auto_switch_enabled": True, "manual_replica_enabled": True})

    agent.refresh_from_db()
    assert agent.auto_switch_enabled is True and agent.manual_replica_enabled is False
    manual.refresh_from_db()
    assert manual.status == "terminated"
    assert live_replicas(agent, "emergency") == {emergency.pk}
    assert SystemEvent.objects.filter(agent=agent, event_type="mutual_exclusivity_enforced").exists()


def test_turning_both_on_at_once_is_refused_and_changes_nothing(agent):
    ReplicaFactory(agent=agent, replica_type="emergency")
    ReplicaFactory(agent=agent, replica_type="manual")
    with pytest.raises(InvalidInput) as exc:
        agent_settings_update(
            agent=agent, changes={"auto_switch_enabled": True, "manual_replica_enabled": True, "replica_count": 3}
        )
    assert "auto_switch_enabled" in exc.value.message and "manual_replica_enabled" in exc.value.message
    agent.refresh_from_db()
    assert (agent.auto_switch_enabled, agent.manual_replica_enabled, agent.replica_count) == (False, False, 0)
    assert Replica.objects.filter(status="terminated").count() == 0
    assert not SystemEvent.objects.exists()


def test_plain_change_without_a_flag_turning_on_ends_no_replicas(agent):
    agent.manual_replica_enabled = True
    agent.save()
    ReplicaFactory(agent=agent, replica_type="manual")
    agent_settings_update(agent=agent, changes={"manual_replica_enabled": True, "replica_count": 2})
    agent.refresh_from_db()
    assert agent.replica_count == 2 and agent.manual_replica_enabled is True
    assert Replica.objects.filter(status="terminated").count() == 0
    assert not SystemEvent.objects.filter(event_type="mutual_exclusivity_enforced").exists()


def test_no_change_records_no_event(agent):
    agent_settings_update(agent=agent, changes={"replica_count": 0, "auto_switch_enabled": False})
    assert not SystemEvent.objects.exists()


def test_turning_a_flag_off_never_turns_the_other_on(agent):
    agent.auto_switch_enabled = True
    agent.save()
    agent_settings_update(agent=agent, changes={"auto_switch_enabled": False})
    agent.refresh_from_db()
    assert agent.auto_switch_enabled is False and agent.manual_replica_enabled is False


def test_toggle_flips_enabled_and_status(agent):
    agent = agent_enabled_toggle(agent=agent)
    assert agent.enabled is False and agent.status == "disabled"
    agent = agent_enabled_toggle(agent=agent)
    assert agent.enabled is True and agent.status == "online"
    assert list(SystemEvent.objects.filter(agent=agent).order_by("id").values_list("event_type", flat=True)) == [
        "agent_disabled",
        "agent_enabled",
    ]


def test_toggle_leaves_a_switching_agent_switching(agent):
    Agent.objects.filter(pk=agent.pk).update(status="switching")
    agent = agent_enabled_toggle(agent=agent)
    assert agent.enabled is False and agent.status == "switching"


# --- the API ---------------------------------------------------------------------------------


def test_toggle_enabled_api_with_no_body_and_the_agent_sees_it(api, agent):
    url = f"/api/client/agents/{agent.pk}/toggle-enabled"
    r = api.post(url, content_type="application/json")  # the dashboard: JSON content type, no body
    assert r.status_code == 200
    assert r.json() == {"success": True, "enabled": False}
    assert api.get(f"/api/agents/{agent.pk}/config").json()["enabled"] is False
    r = api.post(url)
    assert r.status_code == 200 and r.json() == {"success": True, "enabled": True}
    assert api.get(f"/api/agents/{agent.pk}/config").json()["enabled"] is True


def test_settings_api_coerces_a_string_replica_count(api, agent):
    body = {"auto_switch_enabled": False, "auto_terminate_enabled": False, "manual_replica_enabled": False,
            "replica_count": "2"}
    r = api.post(f"/api/client/agents/{agent.pk}/settings", body, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["success"] is True
    assert r.json()["settings"]["replica_count"] == 2
    agent.refresh_from_db()
    assert agent.replica_count == 2 and agent.auto_terminate_enabled is False
    config = api.get(f"/api/agents/{agent.pk}/config").json()
    assert config["replica_count"] == 2 and config["auto_terminate_enabled"] is False


@pytest.mark.parametrize(
    "body, field",
    [
        ({"replica_count": 6}, "replica_count"),
        ({"replica_count": -1}, "replica_count"),
        ({"replica_count": "two"}, "replica_count"),
        ({"replica_count": 2.5}, "replica_count"),
        ({"replica_count": None}, "replica_count"),
        ({"auto_switch_enabled": "yes"}, "auto_switch_enabled"),
        ({"manual_replica_enabled": 1}, "manual_replica_enabled"),
        ({}, "settings"),
    ],
)
def test_settings_api_rejects_bad_values_with_a_400_naming_the_field(api, agent, body, field):
    r = api.post(f"/api/client/agents/{agent.pk}/settings", body, format="json")
    assert r.status_code == 400
    assert field in r.json()["error"]
    agent.refresh_from_db()
    assert agent.replica_count == 0


def test_settings_api_both_turned_on_is_400_naming_the_conflict(api, agent):
    body = {"auto_switch_enabled": True, "manual_replica_enabled": True, "auto_terminate_enabled": True, "replica_count": 1}
    r = api.post(f"/api/client/agents/{agent.pk}/settings", body, format="json")
    assert r.status_code == 400
    error = r.json()["error"]
    assert "auto_switch_enabled" in error and "manual_replica_enabled" in error and "mutually exclusive" in error


def test_settings_api_enforces_exclusivity(api, agent):
    agent.auto_switch_enabled = True
    agent.save()
    replica = ReplicaFactory(agent=agent, replica_type="emergency", status="ready")
    body = {"auto_switch_enabled": True, "manual_replica_enabled": True, "auto_terminate_enabled": True, "replica_count": 1}
    r = api.post(f"/api/client/agents/{agent.pk}/settings", body, format="json")
    assert r.status_code == 200
    assert r.json()["settings"]["auto_switch_enabled"] is False
    assert r.json()["settings"]["manual_replica_enabled"] is True
    replica.refresh_from_db()
    assert replica.status == "terminated"
    listed = api.get(f"/api/client/{agent.client_id}/replicas").json()["replicas"]
    assert [r["status"] for r in listed] == ["terminated"]
