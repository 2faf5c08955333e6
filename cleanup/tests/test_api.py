from datetime import datetime, timezone as dt_tz

import pytest
from django.test import override_settings

from agents.tests.factories import AgentFactory
from cleanup.models import CleanupLog

pytestmark = pytest.mark.django_db

REPORT = {
    "timestamp": "2024-01-15T12:00:00Z",
    "snapshots": {
        "type": "snapshots",
        "deleted": ["snap-123", "snap-456"],
        "failed": [],
        "cutoff_date": "2024-01-08T12:00:00Z",
    },
    "amis": {
        "type": "amis",
        "deleted_amis": ["ami-123"],
        "deleted_snapshots": ["snap-789"],
        "failed": [],
        "cutoff_date": "2023-12-16T12:00:00Z",
    },
}

# docs/API.md §1.10: a section that hit an AWS error, naive UTC timestamps, failed items as objects.
ERROR_REPORT = {
    "timestamp": "2024-01-15T13:00:00",
    "snapshots": {"type": "snapshots", "deleted": [], "failed": [], "error": "UnauthorizedOperation: no"},
    "amis": {
        "type": "amis",
        "deleted_amis": ["ami-1"],
        "deleted_snapshots": [],
        "failed": [{"id": "ami-9", "error": "InvalidAMIID.Unavailable"}, {"id": "ami-8", "error": "x"}],
        "cutoff_date": "2023-12-16T13:00:00",
    },
}


def url(agent) -> str:
    return f"/api/agents/{agent.pk}/cleanup-report"


def test_report_records_one_row_per_section(api, client_obj):
    agent = AgentFactory(client=client_obj)
    r = api.post(url(agent), REPORT, format="json")
    assert r.status_code == 200
    assert r.json() == {"success": True, "message": "Cleanup report recorded"}
    logs = {log.cleanup_type: log for log in CleanupLog.objects.filter(agent=agent)}
    assert set(logs) == {"snapshots", "amis"}
    snaps, amis = logs["snapshots"], logs["amis"]
    assert (snaps.deleted_count, snaps.failed_count) == (2, 0)
    assert (amis.deleted_count, amis.failed_count) == (2, 0)  # one AMI and its snapshot
    assert snaps.cutoff_date == datetime(2024, 1, 8, 12, tzinfo=dt_tz.utc)
    assert amis.cutoff_date == datetime(2023, 12, 16, 12, tzinfo=dt_tz.utc)
    assert snaps.details == REPORT["snapshots"] and amis.details == REPORT["amis"]
    assert snaps.client_id == client_obj.pk
    assert snaps.executed_at == datetime(2024, 1, 15, 12, tzinfo=dt_tz.utc)
    agent.refresh_from_db()
    assert agent.last_cleanup_at == datetime(2024, 1, 15, 12, tzinfo=dt_tz.utc)


def test_error_sections_and_failed_objects(api, client_obj):
    agent = AgentFactory(client=client_obj)
    r = api.post(url(agent), ERROR_REPORT, format="json")
    assert r.status_code == 200, r.content
    snaps = CleanupLog.objects.get(agent=agent, cleanup_type="snapshots")
    amis = CleanupLog.objects.get(agent=agent, cleanup_type="amis")
    assert snaps.error == "UnauthorizedOperation: no" and snaps.cutoff_date is None
    assert (snaps.deleted_count, snaps.failed_count) == (0, 0)
    assert (amis.deleted_count, amis.failed_count) == (1, 2)
    assert amis.details["failed"][0] == {"id": "ami-9", "error": "InvalidAMIID.Unavailable"}
    # Naive timestamps are UTC.
    assert amis.executed_at == datetime(2024, 1, 15, 13, tzinfo=dt_tz.utc)
    assert amis.cutoff_date == datetime(2023, 12, 16, 13, tzinfo=dt_tz.utc)


def test_resent_report_adds_no_rows(api, client_obj):
    agent = AgentFactory(client=client_obj)
    assert api.post(url(agent), REPORT, format="json").status_code == 200
    assert api.post(url(agent), REPORT, format="json").status_code == 200
    assert CleanupLog.objects.filter(agent=agent).count() == 2
    later = dict(REPORT, timestamp="2024-01-15T13:00:00Z")
    assert api.post(url(agent), later, format="json").status_code == 200
    assert CleanupLog.objects.filter(agent=agent).count() == 4


def test_last_cleanup_never_moves_back(api, client_obj):
    agent = AgentFactory(client=client_obj)
    api.post(url(agent), ERROR_REPORT, format="json")
    api.post(url(agent), REPORT, format="json")  # older timestamp, arrives late
    agent.refresh_from_db()
    assert agent.last_cleanup_at == datetime(2024, 1, 15, 13, tzinfo=dt_tz.utc)


def test_another_clients_agent_is_404(api, other_client):
    agent = AgentFactory(client=other_client)
    r = api.post(url(agent), REPORT, format="json")
    assert r.status_code == 404
    assert r.json()
    assert not CleanupLog.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"snapshots": {"type": "snapshots", "deleted": "snap-1"}},
        {"snapshots": {"type": "volumes", "deleted": []}},
        {"amis": {"type": "amis", "failed": [3]}},
        {"timestamp": "yesterday"},
    ],
)
def test_bad_bodies_are_400_json(api, client_obj, body):
    agent = AgentFactory(client=client_obj)
    r = api.post(url(agent), body, format="json")
    assert r.status_code == 400
    assert r.json()
    assert not CleanupLog.objects.exists()


def test_unauthenticated_is_401(client_obj):
    from rest_framework.test import APIClient

    agent = AgentFactory(client=client_obj)
    assert APIClient().post(url(agent), REPORT, format="json").status_code == 401


@override_settings(AUTO_CLEANUP_ENABLED=False, CLEANUP_SNAPSHOTS_DAYS=3, CLEANUP_AMIS_DAYS=14)
def test_agent_config_carries_cleanup_settings(api, client_obj):
    agent = AgentFactory(client=client_obj)
    config = api.get(f"/api/agents/{agent.pk}/config").json()
    assert config["AUTO_CLEANUP_ENABLED"] is False
    assert config["CLEANUP_SNAPSHOTS_DAYS"] == 3
    assert config["CLEANUP_AMIS_DAYS"] == 14


def test_admin_lists_cleanup_logs(client_obj, admin_client):
    agent = AgentFactory(client=client_obj)
    CleanupLog.objects.create(agent=agent, client=client_obj, cleanup_type="amis", deleted_count=1,
                              executed_at=datetime(2024, 1, 15, tzinfo=dt_tz.utc))
    r = admin_client.get("/admin/cleanup/cleanuplog/")
    assert r.status_code == 200
    assert b"amis" in r.content.lower() or b"AMIs" in r.content
