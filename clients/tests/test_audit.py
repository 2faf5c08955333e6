"""The audit trail (issue 20, item 6): every change made with a dashboard token is recorded with the
token's name, the time and the source address (DRF's client-address rule with NUM_PROXIES), readable by
the client (newest first, paged) and by staff in the admin, read-only."""
import pytest
from rest_framework.test import APIClient

from agents.models import Replica
from agents.tests.factories import AgentFactory, ReplicaFactory, SpotPoolFactory
from clients.models import AuditEntry
from clients.services import client_token_create

pytestmark = pytest.mark.django_db


def with_token(token: str, **extra) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}", **extra)
    return api


@pytest.fixture
def agent(client_obj):
    return AgentFactory(client=client_obj, current_pool=SpotPoolFactory(az="us-east-1a"))


def test_dashboard_changes_are_recorded_with_token_name_and_address(client_obj, agent):
    _, plain = client_token_create(client=client_obj, name="alice's dashboard", scope="dashboard")
    api = with_token(plain, REMOTE_ADDR="203.0.113.7")
    assert api.post(f"/api/client/agents/{agent.pk}/settings", {"replica_count": 2}, format="json").status_code == 200
    assert api.post(f"/api/client/agents/{agent.pk}/toggle-enabled").status_code == 200
    assert api.post(f"/api/agents/{agent.pk}/issue-switch-command", {"target_mode": "ondemand"},
                    format="json").status_code == 200
    replica = ReplicaFactory(agent=agent, pool=agent.current_pool, status="ready")
    assert api.delete(f"/api/agents/{agent.pk}/replicas/{replica.pk}").status_code == 200
    assert api.post(f"/api/client/{client_obj.pk}/webhooks", {"url": "https://hooks.example.com/a",
                                                              "events": []}, format="json").status_code == 201
    assert api.post(f"/api/client/{client_obj.pk}/tokens", {"name": "ci", "scope": "agent"},
                    format="json").status_code == 201
    r = api.get(f"/api/client/{client_obj.pk}/audit")
    assert r.status_code == 200
    entries = r.json()["entries"]
    assert [e["action"] for e in entries] == ["token.create", "webhook.create", "replica.delete",
                                              "agent.switch_command", "agent.toggle_enabled", "agent.settings"]
    assert r.json()["total"] == 6
    assert {e["token_name"] for e in entries} == {"alice's dashboard"}
    assert {e["source_ip"] for e in entries} == {"203.0.113.7"}
    assert entries[-1]["details"] == {"replica_count": 2} and entries[-1]["target"] == str(agent.pk)
    assert Replica.objects.get().status == "terminated"
    page = api.get(f"/api/client/{client_obj.pk}/audit", {"limit": 2, "offset": 1}).json()
    assert [e["action"] for e in page["entries"]] == ["webhook.create", "replica.delete"]


def test_the_address_behind_trusted_proxies(client_obj, agent, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    api = with_token(client_obj.token, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.1, 198.51.100.9")
    assert api.post(f"/api/client/agents/{agent.pk}/toggle-enabled").status_code == 200
    entry = AuditEntry.objects.get()
    assert (entry.token_name, entry.token_id, entry.source_ip) == ("primary", None, "198.51.100.9")


def test_reads_and_agent_tokens_record_nothing(client_obj, agent):
    api = with_token(client_obj.token)
    api.get(f"/api/client/{client_obj.pk}/agents")
    _, plain = client_token_create(client=client_obj, name="agents", scope="agent")
    with_token(plain).post(f"/api/client/agents/{agent.pk}/toggle-enabled")  # 403
    assert not AuditEntry.objects.exists()


def test_staff_read_the_trail_in_the_admin_without_changing_it(admin_client, client_obj, agent):
    with_token(client_obj.token).post(f"/api/client/agents/{agent.pk}/toggle-enabled")
    entry = AuditEntry.objects.get()
    assert admin_client.get("/admin/clients/auditentry/").status_code == 200
    assert admin_client.get(f"/admin/clients/auditentry/{entry.pk}/change/").status_code == 200
    assert admin_client.get("/admin/clients/auditentry/add/").status_code == 403
    assert admin_client.post(f"/admin/clients/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.count() == 1
