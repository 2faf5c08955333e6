"""Staff handle termination events, replicas and system events in the Django admin."""
import pytest
from django.urls import reverse

from agents.models import Replica, SystemEvent, TerminationEvent
from agents.services.events import system_event_log
from agents.tests.factories import AgentFactory, ReplicaFactory, TerminationEventFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def events(client_obj):
    agent = AgentFactory(client=client_obj, hostname="db-primary")
    other = AgentFactory(hostname="web-9")
    return [
        TerminationEventFactory(agent=agent),
        TerminationEventFactory(agent=agent, event_type="rebalance_recommendation", status="handling"),
        TerminationEventFactory(agent=other),
    ]


def test_list_filters_and_search(admin_client, events):
    url = reverse("admin:agents_terminationevent_changelist")
    assert admin_client.get(url).status_code == 200
    r = admin_client.get(url, {"event_type__exact": "rebalance_recommendation"})
    assert list(r.context["cl"].queryset) == [events[1]]
    r = admin_client.get(url, {"status__exact": "detected", "client__id__exact": str(events[0].client_id)})
    assert list(r.context["cl"].queryset) == [events[0]]
    r = admin_client.get(url, {"q": "web-9"})
    assert list(r.context["cl"].queryset) == [events[2]]
    r = admin_client.get(url, {"q": events[0].instance_id})
    assert set(r.context["cl"].queryset) == {events[0], events[1]}
    r = admin_client.get(url, {"detected_at__gte": "2000-01-01", "detected_at__lt": "2000-01-02"})
    assert r.status_code == 200 and list(r.context["cl"].queryset) == []


def test_open_and_edit_one(admin_client, events):
    event = events[0]
    url = reverse("admin:agents_terminationevent_change", args=[event.pk])
    assert admin_client.get(url).status_code == 200
    r = admin_client.post(url, {"status": "handling", "resolved_at_0": "", "resolved_at_1": "",
                                "action_taken": "staff launched a replica by hand", "metadata": "{}"})
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    event.refresh_from_db()
    assert event.status == "handling" and event.action_taken == "staff launched a replica by hand"
    # Closing it stamps resolved_at; reopening a closed event is refused.
    admin_client.post(url, {"status": "resolved", "resolved_at_0": "", "resolved_at_1": "", "action_taken": "ok",
                            "metadata": "{}"})
    event.refresh_from_db()
    assert event.status == "resolved" and event.resolved_at is not None
    r = admin_client.post(url, {"status": "detected", "resolved_at_0": "", "resolved_at_1": "", "action_taken": "",
                                "metadata": "{}"})
    assert r.status_code == 200  # the form comes back with the error
    event.refresh_from_db()
    assert event.status == "resolved"


@pytest.mark.parametrize("action,status", [("mark_resolved", "resolved"), ("mark_failed", "failed")])
def test_bulk_close_with_action_taken(admin_client, events, action, status):
    url = reverse("admin:agents_terminationevent_changelist")
    r = admin_client.post(url, {"action": action, "_selected_action": [events[0].pk, events[1].pk],
                                "action_taken": "moved to on-demand by hand"})
    assert r.status_code == 302
    for event in events[:2]:
        event.refresh_from_db()
        assert (event.status, event.action_taken) == (status, "moved to on-demand by hand")
        assert event.resolved_at is not None
    events[2].refresh_from_db()
    assert events[2].status == "detected"


def test_replica_admin_list_edit_and_bulk_terminate(admin_client, client_obj):
    agent = AgentFactory(client=client_obj, hostname="db-primary")
    ready = ReplicaFactory(agent=agent, status="ready")
    promoted = ReplicaFactory(agent=agent, status="promoted", replica_type="manual")
    url = reverse("admin:agents_replica_changelist")
    r = admin_client.get(url, {"replica_type__exact": "manual"})
    assert list(r.context["cl"].queryset) == [promoted]
    r = admin_client.get(url, {"q": ready.instance_id})
    assert list(r.context["cl"].queryset) == [ready]
    assert admin_client.get(reverse("admin:agents_replica_change", args=[ready.pk])).status_code == 200
    r = admin_client.post(url, {"action": "terminate_replicas", "_selected_action": [str(ready.pk), str(promoted.pk)]})
    assert r.status_code == 302
    assert Replica.objects.get(pk=ready.pk).status == "terminated"
    assert Replica.objects.get(pk=promoted.pk).status == "promoted"  # final: skipped, not rewritten


def test_system_event_admin(admin_client, client_obj):
    agent = AgentFactory(client=client_obj, hostname="db-primary")
    event = system_event_log(agent=agent, event_type="termination_notice", severity="warning", message="notice")
    url = reverse("admin:agents_systemevent_changelist")
    r = admin_client.get(url, {"severity__exact": "warning", "q": "db-primary"})
    assert list(r.context["cl"].queryset) == [event]
    assert admin_client.get(reverse("admin:agents_systemevent_change", args=[event.pk])).status_code == 200
    admin_client.post(url, {"action": "mark_info", "_selected_action": [event.pk]})
    assert SystemEvent.objects.get(pk=event.pk).severity == "info"
