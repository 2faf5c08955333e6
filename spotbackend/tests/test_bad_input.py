"""Bad input gets a 4xx JSON answer that names the problem and changes nothing; free-form data that
is stored is capped in size (issue 10, item 4). Over-long request lines/headers: test_gunicorn_limits.py."""
import io
import json
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from django.test import override_settings
from rest_framework.exceptions import ParseError

from agents.api.serializers import HeartbeatInput
from agents.models import Agent, Command, Switch
from agents.tests import payloads as P
from agents.tests.factories import AgentFactory, CommandFactory
from cleanup.models import CleanupLog
from spotbackend.api import parse
from spotbackend.parsers import MAX_JSON_DEPTH, PayloadTooLarge, SafeJSONParser

pytestmark = pytest.mark.django_db


def post_raw(api, path, text: str | bytes):
    return api.generic("POST", path, text if isinstance(text, bytes) else text.encode(), content_type="application/json")


def assert_json_error(r, status, *words):
    assert r.status_code == status, r.content[:300]
    body = r.json()
    assert body["success"] is False
    for word in words:
        assert word in body["error"], body["error"]
    return body


def test_ten_megabyte_body_is_413_and_registers_nothing(api, client_obj):
    body = json.dumps({**P.register_v4(token=client_obj.token), "hostname": "x" * (10 * 1024 * 1024)})
    r = post_raw(api, "/api/agents/register", body)
    assert_json_error(r, 413, "larger than")
    assert not Agent.objects.exists()


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_the_limit_is_a_setting(api, client_obj):
    assert post_raw(api, "/api/agents/register", json.dumps({"pad": "x" * 1200})).status_code == 413
    r = post_raw(api, "/api/agents/register", json.dumps(P.register_v4(token=client_obj.token)))
    assert r.status_code in (200, 201)


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100)
def test_parser_enforces_the_limit_on_what_it_reads():
    with pytest.raises(PayloadTooLarge):
        SafeJSONParser().parse(io.BytesIO(b'{"a": "' + b"x" * 200 + b'"}'), parser_context={})


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_deep_nesting_is_400(api, client_obj, depth):
    agent = AgentFactory(client=client_obj)
    r = post_raw(api, f"/api/agents/{agent.pk}/heartbeat", "[" * depth + "]" * depth)
    assert_json_error(r, 400, "nested deeper")


def test_moderate_nesting_in_a_snapshot_is_fine():
    nested = {}
    for _ in range(MAX_JSON_DEPTH - 5):
        nested = {"n": nested}
    assert SafeJSONParser().parse(io.BytesIO(json.dumps({"snapshot": nested}).encode()), parser_context={})


def test_lone_surrogate_in_a_choice_field_is_400_naming_it(api, client_obj):
    agent = AgentFactory(client=client_obj)
    r = post_raw(api, f"/api/agents/{agent.pk}/heartbeat", '{"status": "\\ud800"}')
    assert_json_error(r, 400, "surrogate", "'status'")


def test_lone_surrogate_in_stored_free_form_data_is_400_and_nothing_stored(api, client_obj):
    agent = AgentFactory(client=client_obj, instance_id="i-0aaa1111")
    report = P.switch_report_v4()
    report["snapshot"] = {"volumes": [{"name": "ok"}, {"name": "\udfff"}]}
    r = post_raw(api, f"/api/agents/{agent.pk}/switch-report", json.dumps(report))
    assert_json_error(r, 400, "surrogate", "snapshot.volumes[1].name")
    r = post_raw(api, f"/api/agents/{agent.pk}/cleanup-report", '{"snapshots": {"failed": [{"\\ud83d": 1}]}}')
    assert_json_error(r, 400, "surrogate")
    assert not Switch.objects.exists() and not CleanupLog.objects.exists()


def test_a_valid_surrogate_pair_is_fine(api, client_obj):
    agent = AgentFactory(client=client_obj)
    r = post_raw(api, f"/api/agents/{agent.pk}/heartbeat", '{"status": "online", "az": "\\ud83d\\ude80"}')
    assert r.status_code == 200, r.content


def test_invalid_utf8_is_400(api, client_obj):
    agent = AgentFactory(client=client_obj)
    assert_json_error(post_raw(api, f"/api/agents/{agent.pk}/heartbeat", b'{"status": "\xff"}'), 400, "not valid")


@override_settings(STORED_PAYLOAD_MAX_BYTES=2000)
def test_switch_report_and_cleanup_details_are_capped(api, client_obj):
    agent = AgentFactory(client=client_obj, instance_id="i-0aaa1111")
    report = P.switch_report_v4()
    report["snapshot"] = {"blob": "y" * 50_000}
    r = post_raw(api, f"/api/agents/{agent.pk}/switch-report", json.dumps(report))
    assert r.status_code == 200, r.content
    stored = Switch.objects.get().report
    assert stored["truncated"] is True and stored["original_bytes"] > 50_000
    assert len(json.dumps(stored)) < 2000
    cleanup = {"timestamp": "2024-01-15T12:00:00Z",
               "snapshots": {"type": "snapshots", "deleted": [], "error": "E" * 100_000,
                             "failed": [{"id": f"snap-{i}", "error": "AccessDenied"} for i in range(5000)]}}
    r = post_raw(api, f"/api/agents/{agent.pk}/cleanup-report", json.dumps(cleanup))
    assert r.status_code == 200, r.content
    log = CleanupLog.objects.get()
    assert log.failed_count == 5000  # the counts stay exact
    assert log.details["truncated"] is True and len(log.error) < 5000


def test_a_huge_command_message_is_capped_not_refused(api, client_obj):
    agent = AgentFactory(client=client_obj)
    command = CommandFactory(agent=agent, status="delivered")
    r = api.post(f"/api/agents/{agent.pk}/commands/{command.pk}/executed",
                 {"success": True, "message": "m" * 100_000}, format="json")
    assert r.status_code == 200, r.content
    assert len(Command.objects.get(pk=command.pk).message) < 5000


def test_not_json_is_400_json(api, client_obj):
    agent = AgentFactory(client=client_obj)
    assert_json_error(post_raw(api, f"/api/agents/{agent.pk}/heartbeat", "{not json"), 400, "JSON parse error")


def test_parse_error_type():
    with pytest.raises(ParseError):
        SafeJSONParser().parse(io.BytesIO(b'"\\udc00"'), parser_context={})


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_numbers_are_400(api, client_obj, constant):
    agent = AgentFactory(client=client_obj, instance_id="i-0aaa1111")
    report = json.dumps(P.switch_report_v4()).replace("{", '{"x": ' + constant + ", ", 1)
    assert_json_error(post_raw(api, f"/api/agents/{agent.pk}/switch-report", report), 400, "not JSON compliant")
    assert not Switch.objects.exists()


def test_lone_surrogate_in_another_declared_charset_is_400(api, client_obj):
    agent = AgentFactory(client=client_obj)
    body = '{"status": "\\ud800"}'.encode("utf-16")
    r = api.generic("POST", f"/api/agents/{agent.pk}/heartbeat", body, content_type="application/json; charset=utf-16")
    assert_json_error(r, 400, "surrogate", "'status'")


@pytest.mark.parametrize("price", [999999.9999999999, "999999.9999999", 1e6])
def test_a_price_that_rounds_past_the_column_is_400_naming_it(api, client_obj, price):
    """Found by spotbackend/tests/test_schemathesis.py: rounding to 6 decimals made it 1000000.000000."""
    agent = AgentFactory(client=client_obj)
    body = {"instance": {"instance_id": agent.instance_id},
            "pricing": {"spot_pools": [{"pool_id": "t3.medium.us-east-1a", "price": price}]}}
    r = api.post(f"/api/agents/{agent.pk}/pricing-report", body, format="json")
    assert r.status_code == 400 and "price" in r.json()["error"]
    ok = {**body, "pricing": {"spot_pools": [{"pool_id": "t3.medium.us-east-1a", "price": 999999.9999994}]}}
    assert api.post(f"/api/agents/{agent.pk}/pricing-report", ok, format="json").status_code == 200


def test_a_body_serializer_shared_by_every_call_keeps_nothing_between_calls(api, client_obj):
    """Input serializers are built once per class and shared (spotbackend/api.py `parse`): a refused body
    must not leave its errors, nor a good one its values, to the next call, in any thread."""
    agent = AgentFactory(client=client_obj, instance_id="i-0aaa1111", az="us-east-1a")
    bad = api.post(f"/api/agents/{agent.pk}/heartbeat", {**P.heartbeat(), "az": 7}, format="json")
    assert bad.status_code == 400 and "az" in bad.json()["error"]
    good = api.post(f"/api/agents/{agent.pk}/heartbeat", P.heartbeat(az="us-east-1b"), format="json")
    assert good.status_code == 200
    agent.refresh_from_db()
    assert agent.az == "us-east-1b"

    def validated(n):
        return parse(HeartbeatInput, SimpleNamespace(data={"instance_id": f"i-{n}", "az": f"az-{n}"}))

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(validated, range(400)))
    assert [(r["instance_id"], r["az"]) for r in results] == [(f"i-{n}", f"az-{n}") for n in range(400)]
