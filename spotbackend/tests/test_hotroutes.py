"""spotbackend/hotroutes.py: the ordinary heartbeat, config, pending-commands, pricing and termination-notice
calls skip DRF's dispatch and answer exactly what the DRF view answers; every other call is the DRF view's."""
from unittest import mock

import pytest
from rest_framework.views import APIView

from agents.models import TerminationEvent
from agents.tests import payloads
from agents.tests.factories import AgentFactory
from conftest import bearer

pytestmark = pytest.mark.django_db

DRF_ONLY = "application/json; q=0.9"  # an Accept header the hot route leaves to DRF's negotiation


@pytest.fixture
def agent(client_obj):
    return AgentFactory(client=client_obj, instance_id="i-0aaa1111", az="us-east-1a", current_mode="spot")


def routes(agent):
    return {
        "heartbeat": ("post", f"/api/agents/{agent.pk}/heartbeat", payloads.heartbeat()),
        "config": ("get", f"/api/agents/{agent.pk}/config", None),
        "pending": ("get", f"/api/agents/{agent.pk}/pending-commands?instance_id=i-0aaa1111", None),
        "pricing": ("post", f"/api/agents/{agent.pk}/pricing-report", payloads.pricing_v4()),
        "notice": ("post", f"/api/agents/{agent.pk}/termination-imminent", payloads.termination_v4()),
    }


def send(api, method, url, body, **headers):
    if method == "post":
        return api.post(url, body, format="json", **headers)
    return api.get(url, **headers)


@pytest.mark.parametrize("name", ["heartbeat", "config", "pending", "pricing", "notice"])
def test_the_ordinary_call_skips_drf_and_answers_the_same(api, agent, name):
    method, url, body = routes(agent)[name]
    if name == "notice":  # the first post decides; the two compared are repeats, answered alike
        assert send(api, method, url, body).json()["create_emergency_replica"] is True
    via_drf = send(api, method, url, body, HTTP_ACCEPT=DRF_ONLY)
    with mock.patch.object(APIView, "dispatch", side_effect=AssertionError("DRF dispatch on the hot route")):
        hot = send(api, method, url, body, HTTP_ACCEPT="*/*")
    assert hot.status_code == via_drf.status_code == 200
    assert hot["Content-Type"] == via_drf["Content-Type"] == "application/json"
    assert hot.json() == via_drf.json()


@pytest.mark.parametrize("name", ["heartbeat", "config", "pending", "pricing", "notice"])
@pytest.mark.parametrize("case,status", [
    ("no token", 401), ("unknown token", 401), ("malformed header", 401), ("inactive client", 403),
    ("another client's agent", 404), ("malformed id", 404),
])
def test_every_other_call_is_the_drf_views(api, client_obj, other_client, agent, name, case, status):
    method, url, body = routes(agent)[name]
    headers = {}
    if case == "no token":
        api.credentials()
    elif case == "unknown token":
        api.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    elif case == "malformed header":
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {client_obj.token} extra")
    elif case == "inactive client":
        client_obj.is_active = False
        client_obj.save()
    elif case == "another client's agent":
        api = bearer(other_client)
    elif case == "malformed id":
        url = url.replace(str(agent.pk), "None")
    r = send(api, method, url, body, **headers)
    assert r.status_code == status, r.content
    assert r.json()["success"] is False and r.json()["error"]


def test_a_v3_or_bad_pricing_report_is_the_drf_views(api, agent):
    r = api.post(f"/api/agents/{agent.pk}/pricing-report", payloads.pricing_v3(), format="json")
    assert r.status_code == 200 and r.json()["success"] is True
    body = payloads.pricing_v4()
    body["pricing"]["spot_pools"][0]["price"] = "cheap"
    r = api.post(f"/api/agents/{agent.pk}/pricing-report", body, format="json")
    assert r.status_code == 400 and "spot_pools" in r.json()["error"]


def test_a_bad_heartbeat_body_gets_the_serializers_400(api, agent):
    r = api.post(f"/api/agents/{agent.pk}/heartbeat", {"status": "sleepy"}, format="json")
    assert r.status_code == 400 and "status" in r.json()["fields"]
    r = api.post(f"/api/agents/{agent.pk}/heartbeat", "[1, 2]", content_type="application/json")
    assert r.status_code == 400
    r = api.post(f"/api/agents/{agent.pk}/heartbeat", "{bad json", content_type="application/json")
    assert r.status_code == 400


def test_other_methods_are_the_drf_views(api, agent):
    assert api.post(f"/api/agents/{agent.pk}/config", {}, format="json").status_code == 405
    assert api.get(f"/api/agents/{agent.pk}/heartbeat").status_code == 405


def test_a_notice_the_fast_parser_leaves_gets_the_serializers_answer(api, agent):
    """A time the fast parser does not take is the serializer's: a 400 naming the field, or, for a
    valid spelling it leaves, the same decision as the hot route's."""
    url = f"/api/agents/{agent.pk}/termination-imminent"
    r = api.post(url, {**payloads.termination_v4(), "termination_time": "soon"}, format="json")
    assert r.status_code == 400 and "termination_time" in r.json()["error"]
    r = api.post(url, {**payloads.termination_v4(), "action": 5}, format="json")
    assert r.status_code == 400 and "action" in r.json()["error"]
    with mock.patch.object(APIView, "dispatch", side_effect=AssertionError("DRF dispatch on the hot route")):
        first = api.post(url, payloads.termination_v4(), format="json")
    assert first.status_code == 200 and first.json()["create_emergency_replica"] is True
    # Not ASCII: the fast parser leaves it to the serializer, which takes it; the same notice, a repeat.
    again = api.post(url, {**payloads.termination_v4(), "action": "termin\u00e9"}, format="json")
    assert again.status_code == 200 and again.json()["create_emergency_replica"] is False
    assert again.json()["target_pool_id"] == first.json()["target_pool_id"]
    assert TerminationEvent.objects.filter(agent=agent).count() == 1
