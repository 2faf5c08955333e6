"""The agent endpoints from the outside: auth, tenancy, bad input, JSON always, cheap hot paths."""
import uuid

import pytest

from agents.models import Agent, Command, Instance, SpotPriceSample, Switch
from agents.tests import payloads as P
from agents.tests.factories import AgentFactory, CommandFactory

pytestmark = pytest.mark.django_db


def counts():
    return (Agent.objects.count(), Instance.objects.count(), Command.objects.count(), Switch.objects.count(),
            SpotPriceSample.objects.count())


@pytest.fixture
def agent(client_obj):
    return AgentFactory(client=client_obj)


class TestAuth:
    def test_missing_token_is_401_json(self, client):
        r = client.post("/api/agents/register", {}, content_type="application/json")
        assert r.status_code == 401 and r["Content-Type"].startswith("application/json")
        assert r.json()["success"] is False

    def test_unknown_token_is_401(self, client):
        r = client.get("/api/agents/x/config", HTTP_AUTHORIZATION="Bearer nope")
        assert r.status_code == 401

    def test_token_keyword_is_bearer(self, client, client_obj):
        r = client.get("/api/client/validate", HTTP_AUTHORIZATION=f"Token {client_obj.token}")
        assert r.status_code == 401

    def test_inactive_client_is_403(self, api, client_obj):
        client_obj.is_active = False
        client_obj.save()
        r = api.post("/api/agents/register", P.register_v4(token=client_obj.token), format="json")
        assert r.status_code == 403 and "inactive" in r.json()["error"].lower()


class TestTenancy:
    @pytest.mark.parametrize(
        "method,path",
        [
            ("post", "/api/agents/{a}/heartbeat"),
            ("get", "/api/agents/{a}/config"),
            ("get", "/api/agents/{a}/pending-commands"),
            ("post", "/api/agents/{a}/commands/{c}/executed"),
            ("post", "/api/agents/{a}/mark-command-executed"),
            ("post", "/api/agents/{a}/pricing-report"),
            ("post", "/api/agents/{a}/switch-report"),
            ("get", "/api/agents/{a}"),
        ],
    )
    def test_another_clients_agent_is_404_and_nothing_changes(self, other_api, agent, method, path):
        command = CommandFactory(agent=agent)
        body = {"command_id": str(command.pk), **P.pricing_v4(), **P.switch_report_v4(), **P.heartbeat()}
        before = counts()
        r = getattr(other_api, method)(path.format(a=agent.pk, c=command.pk), body, format="json")
        assert r.status_code == 404 and r.json()["success"] is False
        assert counts() == before
        command.refresh_from_db()
        assert command.status == "pending"

    def test_register_under_another_client_does_not_touch_the_first(self, other_api, other_client, agent):
        r = other_api.post(
            "/api/agents/register",
            P.register_v4(token=other_client.token, instance_id=agent.instance_id, logical_agent_id=agent.logical_agent_id),
            format="json",
        )
        assert r.status_code == 200 and r.json()["agent_id"] != str(agent.pk)


class TestBadInput:
    @pytest.mark.parametrize("agent_id", ["None", "not-a-uuid", str(uuid.uuid4()), "123"])
    def test_unknown_agent_ids_are_404_json(self, api, agent_id):
        r = api.post(f"/api/agents/{agent_id}/heartbeat", P.heartbeat(), format="json")
        assert r.status_code == 404 and r.json() == {"success": False, "error": "Agent not found."}

    def test_malformed_json_is_400_and_nothing_written(self, api):
        before = counts()
        r = api.generic("POST", "/api/agents/register", "{not json", content_type="application/json")
        assert r.status_code == 400 and "JSON" in r.json()["error"]
        assert counts() == before

    def test_body_must_be_an_object(self, api, agent):
        r = api.generic("POST", f"/api/agents/{agent.pk}/heartbeat", "[1, 2]", content_type="application/json")
        assert r.status_code == 400

    def test_missing_required_key_named(self, api, client_obj):
        body = P.register_v4(token=client_obj.token)
        del body["instance_id"]
        r = api.post("/api/agents/register", body, format="json")
        assert r.status_code == 400 and "instance_id" in r.json()["error"]
        assert Agent.objects.count() == 0

    def test_wrong_type_named(self, api, client_obj):
        body = P.register_v4(token=client_obj.token)
        body["hostname"] = 12
        r = api.post("/api/agents/register", body, format="json")
        assert r.status_code == 400 and "hostname" in r.json()["fields"]

    def test_wrong_price_type_in_pricing_report_writes_nothing(self, api, agent):
        body = P.pricing_v4(instance_id=agent.instance_id)
        body["pricing"]["spot_pools"][1]["price"] = "cheap"
        r = api.post(f"/api/agents/{agent.pk}/pricing-report", body, format="json")
        assert r.status_code == 400 and "spot_pools" in r.json()["error"]
        assert SpotPriceSample.objects.count() == 0

    def test_bad_heartbeat_status(self, api, agent):
        r = api.post(f"/api/agents/{agent.pk}/heartbeat", {"status": "sleepy"}, format="json")
        assert r.status_code == 400 and "status" in r.json()["error"]

    def test_unknown_command_is_404(self, api, agent):
        r = api.post(f"/api/agents/{agent.pk}/commands/None/executed", {"success": True}, format="json")
        assert r.status_code == 404
        r = api.post(f"/api/agents/{agent.pk}/commands/{uuid.uuid4()}/executed", {"success": True}, format="json")
        assert r.status_code == 404

    def test_executed_success_must_be_bool(self, api, agent):
        command = CommandFactory(agent=agent)
        r = api.post(f"/api/agents/{agent.pk}/commands/{command.pk}/executed", {"success": "yes"}, format="json")
        assert r.status_code == 400 and "success" in r.json()["error"]

    def test_trailing_slash_is_not_redirected(self, api):
        r = api.post("/api/agents/register/", {}, format="json")
        assert r.status_code == 404 and r["Content-Type"].startswith("application/json")

    def test_get_with_json_content_type_and_empty_body(self, api, agent):
        r = api.generic("GET", f"/api/agents/{agent.pk}/config", "", content_type="application/json")
        assert r.status_code == 200 and r.json()["enabled"] is True

    def test_unknown_keys_ignored(self, api, agent):
        r = api.post(f"/api/agents/{agent.pk}/heartbeat", {**P.heartbeat(instance_id=agent.instance_id), "x": 1},
                     format="json")
        assert r.status_code == 200


class TestResponses:
    def test_config_always_has_enabled_and_settings(self, api, agent):
        Agent.objects.filter(pk=agent.pk).update(enabled=False, replica_count=2)
        body = api.get(f"/api/agents/{agent.pk}/config").json()
        assert body["enabled"] is False and body["replica_count"] == 2
        assert {"auto_switch_enabled", "auto_terminate_enabled", "manual_replica_enabled", "AUTO_CLEANUP_ENABLED",
                "CLEANUP_SNAPSHOTS_DAYS", "CLEANUP_AMIS_DAYS"} <= set(body)

    def test_naive_and_z_timestamps_are_utc(self, api, agent):
        api.post(f"/api/agents/{agent.pk}/pricing-report",
                 P.pricing_v4(collected_at="2026-11-26T19:23:54.196952"), format="json")
        api.post(f"/api/agents/{agent.pk}/pricing-report",
                 P.pricing_v4(collected_at="2026-11-26T20:00:00.5Z"), format="json")
        times = sorted({s.observed_at.isoformat() for s in SpotPriceSample.objects.all()})
        assert times == ["2026-11-26T19:23:54.196952+00:00", "2026-11-26T20:00:00.500000+00:00"]

    def test_switch_report_answers_number(self, api, agent):
        r = api.post(f"/api/agents/{agent.pk}/switch-report",
                     P.switch_report_v4(old_id=agent.instance_id), format="json")
        assert r.status_code == 200 and isinstance(r.json()["savings_impact"], float)


class TestHotPathsAreCheap:
    """Heartbeat, config and pending-commands: a handful of queries, whatever the history size."""

    @pytest.mark.parametrize("history", [0, 30])
    def test_query_counts_do_not_grow(self, api, agent, django_assert_max_num_queries, history):
        for n in range(history):
            Command.objects.create(agent=agent, target_mode="ondemand", status="succeeded", is_open=None)
            Instance.objects.create(agent=agent, client=agent.client, instance_id=f"i-h{n}", state="replaced",
                                    is_primary=None, started_at=agent.registered_at)
        with django_assert_max_num_queries(4):
            api.post(f"/api/agents/{agent.pk}/heartbeat", P.heartbeat(instance_id=agent.instance_id), format="json")
        with django_assert_max_num_queries(2):
            api.get(f"/api/agents/{agent.pk}/config")
        with django_assert_max_num_queries(3):
            assert api.get(f"/api/agents/{agent.pk}/pending-commands").json() == {"commands": []}
