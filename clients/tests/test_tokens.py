"""Named tokens with the least privilege an agent needs (issue 20, item 5): `agent` tokens work on the
agents' routes only, `dashboard` tokens on those and the client API, the client's original token keeps
its full rights; created, rotated with an overlap and revoked through the client API and the admin;
revoked or expired tokens are refused on every route, the cached hot routes included."""
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from agents.tests import payloads as P
from agents.tests.factories import AgentFactory
from clients import services
from clients.models import ClientToken, token_hash

pytestmark = pytest.mark.django_db


def with_token(token: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


@pytest.fixture
def agent(client_obj):
    return AgentFactory(client=client_obj)


def create(api, client, **body):
    return api.post(f"/api/client/{client.pk}/tokens", {"name": "agents", "scope": "agent", **body}, format="json")


def agent_routes(api, agent):
    """What an installed agent calls: validate, heartbeat (a hot route), config (a hot route), a report."""
    return [
        api.get("/api/client/validate").status_code,
        api.post(f"/api/agents/{agent.pk}/heartbeat", P.heartbeat(instance_id=agent.instance_id), format="json")
        .status_code,
        api.get(f"/api/agents/{agent.pk}/config").status_code,
        api.get(f"/api/agents/{agent.pk}/pending-commands").status_code,
    ]


def dashboard_routes(api, client, agent):
    return [
        api.get(f"/api/client/{client.pk}").status_code,
        api.get(f"/api/client/{client.pk}/agents").status_code,
        api.get(f"/api/client/{client.pk}/savings").status_code,
        api.post(f"/api/client/agents/{agent.pk}/settings", {"replica_count": 1}, format="json").status_code,
        api.post(f"/api/agents/{agent.pk}/issue-switch-command", {"target_mode": "ondemand"}, format="json")
        .status_code,
        api.get(f"/api/client/{client.pk}/tokens").status_code,
        api.get(f"/api/client/{client.pk}/webhooks").status_code,
    ]


def test_create_shows_the_token_once_and_stores_its_hash(api, client_obj):
    r = create(api, client_obj, name="fleet", scope="agent")
    assert r.status_code == 201, r.content
    body = r.json()
    row = ClientToken.objects.get(pk=body["id"])
    assert row.token_hash == token_hash(body["token"]) and body["token"] not in str(
        ClientToken.objects.filter(pk=row.pk).values().get())
    assert (body["name"], body["scope"], body["expires_at"], body["last_used_at"]) == ("fleet", "agent", None, None)
    listed = api.get(f"/api/client/{client_obj.pk}/tokens").json()["tokens"]
    assert [t["id"] for t in listed] == [body["id"]] and "token" not in listed[0]


def test_an_agent_token_works_for_the_agent_and_on_nothing_of_the_client_api(api, client_obj, agent):
    plain = create(api, client_obj).json()["token"]
    agent_api = with_token(plain)
    assert agent_routes(agent_api, agent) == [200, 200, 200, 200]
    codes = dashboard_routes(agent_api, client_obj, agent)
    assert codes == [403] * len(codes)
    r = agent_api.get(f"/api/client/{client_obj.pk}/agents")
    assert r.json() == {"success": False, "error": pytest.approx(r.json()["error"])} and "agent" in r.json()["error"]
    # Nor can it make itself a dashboard token.
    assert create(agent_api, client_obj, scope="dashboard").status_code == 403


def test_a_dashboard_token_and_the_original_token_work_everywhere(api, client_obj, agent):
    plain = create(api, client_obj, name="ops dashboard", scope="dashboard").json()["token"]
    for caller in (with_token(plain), api):
        assert agent_routes(caller, agent) == [200, 200, 200, 200]
        codes = dashboard_routes(caller, client_obj, agent)
        assert all(code == 200 for code in codes[:4]) and codes[5:] == [200, 200], codes
        assert codes[4] in (200, 409)  # a manual command (409 when one is already open)


def test_a_revoked_token_is_refused_on_every_route_the_cached_ones_included(api, client_obj, agent):
    created = create(api, client_obj, scope="dashboard").json()
    caller = with_token(created["token"])
    assert agent_routes(caller, agent) == [200, 200, 200, 200]  # now in every cache
    assert api.delete(f"/api/client/{client_obj.pk}/tokens/{created['id']}").status_code == 200
    assert agent_routes(caller, agent) == [401, 401, 401, 401]
    assert caller.get(f"/api/client/{client_obj.pk}/agents").status_code == 401
    assert ClientToken.objects.get().revoked_at is not None
    assert agent_routes(api, agent) == [200, 200, 200, 200]  # the original token is untouched


def test_an_expired_token_is_refused_even_from_the_cache(api, client_obj, agent, monkeypatch):
    soon = timezone.now() + timedelta(hours=1)
    created = create(api, client_obj, expires_at=soon.isoformat()).json()
    caller = with_token(created["token"])
    assert agent_routes(caller, agent) == [200, 200, 200, 200]
    later = soon + timedelta(seconds=1)
    monkeypatch.setattr(services.timezone, "now", lambda: later)
    assert agent_routes(caller, agent) == [401, 401, 401, 401]


def test_an_expiry_in_the_past_is_refused(api, client_obj):
    r = create(api, client_obj, expires_at=(timezone.now() - timedelta(minutes=1)).isoformat())
    assert r.status_code == 400 and not ClientToken.objects.exists()


def test_rotation_is_one_call_with_an_overlap(api, client_obj, agent, monkeypatch):
    created = create(api, client_obj).json()
    old = with_token(created["token"])
    assert agent_routes(old, agent) == [200, 200, 200, 200]
    r = api.post(f"/api/client/{client_obj.pk}/tokens/{created['id']}/rotate", {"overlap_seconds": 3600},
                 format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["token"]["name"] == "agents" and body["token"]["scope"] == "agent"
    new = with_token(body["token"]["token"])
    assert agent_routes(new, agent) == [200, 200, 200, 200]
    assert agent_routes(old, agent) == [200, 200, 200, 200]  # the overlap
    until = ClientToken.objects.get(pk=created["id"]).expires_at
    assert abs((until - timezone.now()) - timedelta(hours=1)) < timedelta(minutes=1)
    later = until + timedelta(seconds=1)
    monkeypatch.setattr(services.timezone, "now", lambda: later)
    assert agent_routes(old, agent) == [401, 401, 401, 401]
    assert agent_routes(new, agent) == [200, 200, 200, 200]


def test_last_used_is_written_at_most_once_a_minute(api, client_obj, agent, monkeypatch):
    plain = create(api, client_obj).json()["token"]
    caller = with_token(plain)
    with CaptureQueriesContext(connection) as first:
        assert caller.get(f"/api/agents/{agent.pk}/config").status_code == 200
    used = ClientToken.objects.get().last_used_at
    assert used is not None
    assert any("UPDATE" in q["sql"] and "client_tokens" in q["sql"] for q in first.captured_queries)
    with CaptureQueriesContext(connection) as again:
        for _ in range(5):
            assert caller.get(f"/api/agents/{agent.pk}/config").status_code == 200
    assert not any("client_tokens" in q["sql"] for q in again.captured_queries)
    assert ClientToken.objects.get().last_used_at == used
    # A minute later (the process's clock and the wall clock both moved), one write again.
    monkeypatch.setattr(services, "clock", lambda real=services.clock: real() + 61)
    later = timezone.now() + timedelta(seconds=61)
    monkeypatch.setattr(services.timezone, "now", lambda: later)
    assert caller.get(f"/api/agents/{agent.pk}/config").status_code == 200
    assert ClientToken.objects.get().last_used_at == later


def test_service_token_authenticate_returns_the_grant(client_obj):
    row, plain = services.client_token_create(client=client_obj, name="a", scope="agent")
    grant = services.token_authenticate(token=plain)
    assert (grant.client, grant.scope, grant.token_id, grant.name) == (client_obj, "agent", row.pk, "a")
    original = services.token_authenticate(token=client_obj.token)
    assert (original.scope, original.token_id) == ("dashboard", None)
    assert services.token_authenticate(token="sb_nope") is None


def test_admin_creates_revokes_and_rotates_tokens(admin_client, client_obj):
    r = admin_client.post("/admin/clients/clienttoken/add/", {"client": str(client_obj.pk), "name": "from admin",
                                                              "scope": "dashboard"}, follow=True)
    assert r.status_code == 200
    plain = [str(m) for m in r.context["messages"] if "shown once" in str(m)][0].rsplit(": ", 1)[1]
    row = ClientToken.objects.get()
    assert row.token_hash == token_hash(plain) and services.token_authenticate(token=plain).token_id == row.pk
    r = admin_client.post("/admin/clients/clienttoken/", {"action": "rotate", "_selected_action": [str(row.pk)]},
                          follow=True)
    new_plain = [str(m) for m in r.context["messages"] if "shown once" in str(m)][0].rsplit(": ", 1)[1]
    assert services.token_authenticate(token=new_plain) is not None
    row.refresh_from_db()
    assert row.expires_at is not None
    admin_client.post("/admin/clients/clienttoken/", {"action": "revoke", "_selected_action": [str(row.pk)]})
    assert services.token_authenticate(token=plain) is None
