"""Clients' own webhook endpoints (issue 20): managed through the client API, each event of a client to
that client's endpoints only, signed the Standard Webhooks way, delivered through the outbox on the
spec's schedule, never to an internal address. Deliveries go to a real HTTP listener on the loopback
(WEBHOOK_ALLOW_PRIVATE_TARGETS and WEBHOOK_ALLOW_HTTP are on in the tests); the refusals patch name
resolution and the connection, so nothing is ever sent to such an address."""
import base64
import hashlib
import hmac
import json
import socket
from datetime import timedelta

import pytest
import urllib3.util.connection
from django.utils import timezone

from agents.models import SystemEvent
from agents.services.sweeps import agents_mark_stale_offline
from agents.tests.factories import AgentFactory, SpotPoolFactory
from clients.tests.factories import ClientFactory
from conftest import bearer
from notifications import services
from notifications.http import slack_escape, webhook_send
from notifications.models import Notification, WebhookEndpoint
from notifications.tests.listener import Listener

pytestmark = pytest.mark.django_db

ATTACKER_HOSTNAME = "web-a <!channel> <https://evil.invalid/login|Click here>\nDecision: all clear"


def verify(secret: str, headers: dict, body: bytes) -> bool:
    """What a receiver does (docs/API.md "Verifying a delivery"): any of the space-separated v1 signatures
    matches the HMAC-SHA256 of `id.timestamp.body` under the base64-decoded secret."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(sig.split(",", 1)[1], expected) for sig in headers["webhook-signature"].split())


def create(api, client, **body):
    body = {"url": "https://hooks.example.com/x", "events": ["termination.notice"], **body}
    return api.post(f"/api/client/{client.pk}/webhooks", body, format="json")


def endpoint_for(client, url, events=("termination.notice",), **kwargs):
    return services.webhook_endpoint_create(client=client, url=url, events=list(events), **kwargs)


def deliver(row, now=None):
    return services.notification_deliver(notification_id=row.pk, now=now)


# --- Managing endpoints ---------------------------------------------------------------------------------


def test_create_answers_the_secret_once_and_lists_without_it(api, client_obj):
    r = create(api, client_obj, description="ops", format="slack")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["secret"].startswith("whsec_") and len(base64.b64decode(body["secret"][6:])) == 32
    assert body["events"] == ["termination.notice"] and body["format"] == "slack" and body["enabled"] is True
    listed = api.get(f"/api/client/{client_obj.pk}/webhooks").json()["webhooks"]
    assert [w["id"] for w in listed] == [body["id"]]
    assert "secret" not in listed[0] and body["secret"] not in json.dumps(listed)


def test_patch_delete_and_rotate(api, client_obj):
    created = create(api, client_obj).json()
    base = f"/api/client/{client_obj.pk}/webhooks/{created['id']}"
    r = api.patch(base, {"events": ["agent.offline", "pool.risk_alert"], "enabled": False}, format="json")
    assert r.status_code == 200 and r.json()["events"] == ["agent.offline", "pool.risk_alert"]
    assert r.json()["enabled"] is False
    rotated = api.post(f"{base}/rotate-secret")
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != created["secret"] and rotated.json()["previous_secret_expires_at"]
    row = WebhookEndpoint.objects.get()
    assert (row.secret, row.previous_secret) == (rotated.json()["secret"], created["secret"])
    assert api.delete(base).status_code == 200
    assert not WebhookEndpoint.objects.exists()


def test_unknown_event_kind_is_a_400(api, client_obj):
    assert create(api, client_obj, events=["termination.notice", "everything"]).status_code == 400


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/hook",
    "https://10.0.0.8/hook",
    "https://192.168.1.1/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/hook",
    "https://[fe80::1]/hook",
    "https://[::ffff:169.254.169.254]/hook",
    "https://224.0.0.1/hook",
    "https://0.0.0.0/hook",
    "https://100.64.0.1/hook",
    "https://240.0.0.1/hook",
    "http://hooks.example.com/hook",
    "https://user:pass@hooks.example.com/hook",
    "ftp://hooks.example.com/hook",
])
def test_a_url_that_is_not_public_https_is_refused_at_creation(api, client_obj, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    settings.WEBHOOK_ALLOW_HTTP = False
    r = create(api, client_obj, url=url)
    assert r.status_code == 400, (url, r.content)
    assert r.json()["success"] is False
    assert not WebhookEndpoint.objects.exists()


def test_development_settings_allow_loopback_and_http_but_never_the_metadata_address(api, client_obj, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.WEBHOOK_ALLOW_HTTP = True
    assert create(api, client_obj, url="http://127.0.0.1:9000/hook").status_code == 201
    assert create(api, client_obj, url="https://10.1.2.3/hook").status_code == 201
    assert create(api, client_obj, url="http://169.254.169.254/latest").status_code == 400
    assert create(api, client_obj, url="https://hooks.example.com/public").status_code == 201


def test_an_agent_token_cannot_manage_webhooks(client_obj):
    from clients.services import client_token_create

    _, plain = client_token_create(client=client_obj, name="agents", scope="agent")
    agent_api = bearer(type("C", (), {"token": plain})())
    r = agent_api.get(f"/api/client/{client_obj.pk}/webhooks")
    assert r.status_code == 403 and r.json()["success"] is False
    assert create(agent_api, client_obj).status_code == 403


def test_another_clients_endpoint_and_deliveries_are_404_on_ones_own_client_path(client_obj, other_client, other_api):
    endpoint = endpoint_for(client_obj, "https://hooks.example.com/victim")
    delivery = services.webhook_endpoint_test(endpoint=endpoint)
    own = f"/api/client/{other_client.pk}/webhooks/{endpoint.pk}"
    for method, path in (("patch", own), ("delete", own), ("post", f"{own}/rotate-secret"), ("post", f"{own}/test"),
                         ("get", f"{own}/deliveries"), ("post", f"{own}/deliveries/{delivery.pk}/redeliver")):
        r = getattr(other_api, method)(path, {"enabled": False} if method == "patch" else None, format="json")
        assert r.status_code == 404, (method, path, r.status_code)
    assert WebhookEndpoint.objects.get().enabled is True and Notification.objects.count() == 1


# --- Events reach the client's own endpoints, transactionally -------------------------------------------


def notice(agent):
    return {"instance_id": agent.instance_id, "termination_time": "2026-11-26T19:25:00Z",
            "detected_at": "2026-11-26T19:23:57"}


def test_a_termination_notice_goes_to_its_clients_subscribed_endpoints_only(
    api, client_obj, other_client, django_capture_on_commit_callbacks
):
    agent = AgentFactory(client=client_obj, current_pool=SpotPoolFactory(az="us-east-1a"), hostname=ATTACKER_HOSTNAME)
    mine = endpoint_for(client_obj, "https://hooks.example.com/mine")
    endpoint_for(client_obj, "https://hooks.example.com/other-kinds", events=["agent.offline"])
    endpoint_for(client_obj, "https://hooks.example.com/off").__class__.objects.filter(
        url__endswith="/off").update(enabled=False)
    endpoint_for(other_client, "https://hooks.example.com/theirs")
    with django_capture_on_commit_callbacks(execute=False):
        assert api.post(f"/api/agents/{agent.pk}/termination-imminent", notice(agent), format="json").status_code == 200
        rows = list(Notification.objects.filter(endpoint__isnull=False))
    # Written in the request's transaction, nothing sent yet.
    assert [(r.endpoint_id, r.kind, r.status, r.attempts) for r in rows] == [
        (mine.pk, "termination.notice", "pending", 0)]
    payload = rows[0].payload
    assert payload["type"] == "termination.notice" and payload["id"].startswith("evt_")
    assert payload["id"] == rows[0].event_id
    assert payload["data"]["agent_id"] == str(agent.pk) and payload["data"]["hostname"] == ATTACKER_HOSTNAME


def test_the_stale_agent_sweep_emits_agent_offline(client_obj, other_client):
    stale = timezone.now() - timedelta(hours=2)
    agent = AgentFactory(client=client_obj, status="online", last_heartbeat_at=stale)
    AgentFactory(client=other_client, status="online", last_heartbeat_at=stale)
    mine = endpoint_for(client_obj, "https://hooks.example.com/mine", events=["agent.offline"])
    assert agents_mark_stale_offline() == 2
    rows = list(Notification.objects.filter(endpoint__isnull=False))
    assert [(r.endpoint_id, r.kind, r.payload["data"]["agent_id"]) for r in rows] == [
        (mine.pk, "agent.offline", str(agent.pk))]


# --- Signed deliveries -----------------------------------------------------------------------------------


def test_a_standard_delivery_is_signed_and_verifiable(client_obj):
    with Listener() as hook:
        endpoint = endpoint_for(client_obj, hook.url)
        services.webhook_event_emit(client_id=client_obj.pk, event_type="termination.notice",
                                    data={"agent_id": "a1", "hostname": "web-1"})
        row = Notification.objects.get(endpoint=endpoint)
        assert deliver(row)["status"] == "sent"
    headers, raw = hook.headers[0], hook.raw[0]
    assert headers["webhook-id"] == row.event_id
    assert abs(int(headers["webhook-timestamp"]) - timezone.now().timestamp()) < 60
    assert headers["webhook-signature"].startswith("v1,") and " " not in headers["webhook-signature"]
    assert verify(endpoint.secret, headers, raw)
    assert not verify("whsec_" + base64.b64encode(b"x" * 32).decode(), headers, raw)  # the check can fail
    assert not verify(endpoint.secret, headers, raw + b" ")
    assert json.loads(raw) == row.payload and json.loads(raw)["data"]["hostname"] == "web-1"
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code) == ("sent", 1, 200)


def test_during_a_rotation_both_signatures_are_sent_then_only_the_new_one(client_obj):
    with Listener() as hook:
        endpoint = endpoint_for(client_obj, hook.url)
        old = endpoint.secret
        endpoint = services.webhook_endpoint_secret_rotate(endpoint=endpoint)
        first = services.webhook_endpoint_test(endpoint=endpoint)
        deliver(first)
        later = services.webhook_endpoint_test(endpoint=endpoint)
        deliver(later, now=timezone.now() + timedelta(hours=25))
    both, one = hook.headers
    assert len(both["webhook-signature"].split(" ")) == 2
    assert verify(old, both, hook.raw[0]) and verify(endpoint.secret, both, hook.raw[0])
    assert len(one["webhook-signature"].split(" ")) == 1
    assert verify(endpoint.secret, one, hook.raw[1]) and not verify(old, one, hook.raw[1])


def test_the_slack_format_escapes_agent_text(client_obj):
    with Listener() as hook:
        endpoint = endpoint_for(client_obj, hook.url, format="slack")
        services.webhook_event_emit(client_id=client_obj.pk, event_type="termination.notice",
                                    data={"hostname": ATTACKER_HOSTNAME, "decision": "create_emergency_replica"})
        deliver(Notification.objects.get(endpoint=endpoint))
    assert set(hook.bodies[0]) == {"text"}
    text = hook.bodies[0]["text"]
    assert "<!channel>" not in text and "<https://" not in text
    assert "&lt;!channel&gt;" in text and "&lt;https://evil.invalid/login|Click here&gt;" in text
    assert not any(line.startswith("Decision:") for line in text.splitlines())
    assert verify(endpoint.secret, hook.headers[0], hook.raw[0])


def test_slack_escape():
    assert slack_escape("a & <b>\nc\r\nd") == "a &amp; &lt;b&gt; c d"
    assert slack_escape(None) == ""


# --- Retries, Retry-After, 410, a day of failures --------------------------------------------------------


def test_retries_follow_the_schedule_then_fail(client_obj):
    endpoint = endpoint_for(client_obj, "http://127.0.0.1:9/never")  # discard port: nothing listens
    with Listener(statuses=[500] * 10) as hook:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=hook.url)
        row = services.webhook_endpoint_test(endpoint=endpoint)
        Notification.objects.filter(pk=row.pk).update(metadata={})  # an ordinary delivery, not a one-shot test
        now = timezone.now()
        delays = []
        for _ in range(len(services.ENDPOINT_RETRY_SCHEDULE)):
            result = deliver(row, now=now)
            row.refresh_from_db()
            if result["retry_in"] is None:
                break
            delays.append(result["retry_in"])
            assert row.next_attempt_at == now + timedelta(seconds=result["retry_in"])
            now = row.next_attempt_at
    assert delays == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 8, 500)
    assert len(hook.bodies) == 8
    assert row.attempt_log.count() == 8


def test_429_with_retry_after_is_honoured(client_obj):
    with Listener(statuses=[(429, {"Retry-After": "900"}), (503, {"Retry-After": "2"})]) as hook:
        endpoint = endpoint_for(client_obj, hook.url)
        services.webhook_event_emit(client_id=client_obj.pk, event_type="termination.notice", data={})
        row = Notification.objects.get(endpoint=endpoint)
        now = timezone.now()
        assert deliver(row, now=now)["retry_in"] == 900  # longer than the schedule's 5 s
        row.refresh_from_db()
        assert row.status == "pending" and row.last_status_code == 429
        assert deliver(row, now=now + timedelta(seconds=899))["status"] == "skipped"  # not due yet
        assert deliver(row, now=now + timedelta(seconds=900))["retry_in"] == 300  # the schedule wins over 2 s
        assert deliver(row, now=now + timedelta(seconds=1200))["status"] == "sent"
    assert len(hook.bodies) == 3


def test_410_disables_the_endpoint_and_tells_the_client(api, client_obj):
    with Listener(statuses=[410]) as hook:
        endpoint = endpoint_for(client_obj, hook.url)
        services.webhook_event_emit(client_id=client_obj.pk, event_type="termination.notice", data={})
        services.webhook_event_emit(client_id=client_obj.pk, event_type="termination.notice", data={})
        first, second = Notification.objects.filter(endpoint=endpoint).order_by("pk")
        assert deliver(first)["status"] == "failed"
        assert deliver(second)["status"] == "failed"  # disabled: not sent
    assert len(hook.bodies) == 1
    endpoint.refresh_from_db()
    assert endpoint.enabled is False and "410" in endpoint.disabled_reason
    events = api.get(f"/api/client/{client_obj.pk}/events").json()["events"]
    assert events[0]["event_type"] == "webhook_endpoint_disabled" and "410" in events[0]["message"]
    # No new deliveries for a disabled endpoint; enabling it again clears the reason.
    assert services.webhook_event_emit(client_id=client_obj.pk, event_type="termination.notice", data={}) == 0
    r = api.patch(f"/api/client/{client_obj.pk}/webhooks/{endpoint.pk}", {"enabled": True}, format="json")
    assert r.json()["enabled"] is True and r.json()["disabled_reason"] == ""


def test_an_endpoint_failing_for_a_day_is_disabled(api, client_obj, settings):
    endpoint = endpoint_for(client_obj, "http://127.0.0.1:9/never")
    now = timezone.now()
    with Listener(statuses=[500] * 5) as hook:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=hook.url)
        for hours in (0, 12, 23.9):
            services.webhook_event_emit(client_id=client_obj.pk, event_type="termination.notice", data={},
                                        now=now + timedelta(hours=hours))
            row = Notification.objects.filter(endpoint=endpoint).order_by("-pk").first()
            deliver(row, now=now + timedelta(hours=hours))
            endpoint.refresh_from_db()
            assert endpoint.enabled is True and endpoint.failing_since == now
        services.webhook_event_emit(client_id=client_obj.pk, event_type="termination.notice", data={},
                                    now=now + timedelta(hours=24))
        row = Notification.objects.filter(endpoint=endpoint).order_by("-pk").first()
        deliver(row, now=now + timedelta(hours=24))
    endpoint.refresh_from_db()
    assert endpoint.enabled is False and "24 h" in endpoint.disabled_reason
    assert SystemEvent.objects.filter(client=client_obj, event_type="webhook_endpoint_disabled").count() == 1
    events = api.get(f"/api/client/{client_obj.pk}/events").json()["events"]
    assert events[0]["event_type"] == "webhook_endpoint_disabled"


def test_a_success_ends_the_run_of_failures(client_obj):
    with Listener(statuses=[500]) as hook:
        endpoint = endpoint_for(client_obj, hook.url)
        services.webhook_event_emit(client_id=client_obj.pk, event_type="termination.notice", data={})
        row = Notification.objects.get(endpoint=endpoint)
        now = timezone.now()
        deliver(row, now=now)
        endpoint.refresh_from_db()
        assert endpoint.failing_since == now
        deliver(row, now=now + timedelta(seconds=5))
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None and len(hook.bodies) == 2


def test_a_redirect_is_not_followed(client_obj):
    with Listener() as target, Listener(statuses=[(302, {"Location": "PLACEHOLDER"})]) as hook:
        hook.statuses = [(302, {"Location": target.url})]
        endpoint = endpoint_for(client_obj, hook.url)
        row = services.webhook_endpoint_test(endpoint=endpoint)
        assert deliver(row)["status"] == "failed"
    assert len(hook.bodies) == 1 and target.bodies == []
    row.refresh_from_db()
    assert row.last_status_code == 302


# --- No SSRF at send time ---------------------------------------------------------------------------------


@pytest.fixture
def network(monkeypatch):
    """Name resolution answers what the test says; every connection attempt is recorded and refused."""
    state = {"answers": [], "resolved": [], "connected": []}

    def getaddrinfo(host, port, *args, **kwargs):
        state["resolved"].append(host)
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
                for ip in state["answers"]]

    def create_connection(address, *args, **kwargs):
        state["connected"].append(address)
        raise ConnectionRefusedError("test: no connection leaves")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    return state


@pytest.mark.parametrize("answers", [
    ["169.254.169.254"], ["127.0.0.1"], ["10.0.0.5"], ["93.184.216.34", "10.0.0.5"], ["::1"], ["fd00::1"],
    ["::ffff:127.0.0.1"], ["224.0.0.251"],
])
def test_a_name_resolving_to_an_internal_address_is_refused_before_any_connection(settings, network, answers):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    network["answers"] = answers
    result = webhook_send(url="https://hooks.example.com/secret-path?token=abc", body=b"{}", headers={})
    assert result.ok is False and result.error.startswith("Refused https://hooks.example.com:")
    assert network["resolved"] == ["hooks.example.com"] and network["connected"] == []
    assert "secret-path" not in result.error and "abc" not in result.error


def test_control_a_public_answer_is_connected_to_by_its_checked_address(settings, network):
    """The patch points above are the ones the sender uses: with a public answer it connects there."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    network["answers"] = ["93.184.216.34"]
    result = webhook_send(url="https://hooks.example.com/secret-path", body=b"{}", headers={})
    assert network["connected"] and network["connected"][0][0] == "93.184.216.34"
    assert network["connected"][0][1] == 443
    assert result.ok is False and "secret-path" not in result.error


def test_a_delivery_to_a_name_resolving_to_the_metadata_address_fails_without_connecting(
    client_obj, settings, network
):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    endpoint = endpoint_for(client_obj, "https://metadata.example.com/hook/s3cr3t")
    network["answers"] = ["169.254.169.254"]
    row = services.webhook_endpoint_test(endpoint=endpoint)
    assert deliver(row)["status"] == "failed"
    row.refresh_from_db()
    assert network["connected"] == [] and "not a public address" in row.last_error
    assert "s3cr3t" not in row.last_error and "s3cr3t" not in row.attempt_log.get().error


# --- Deliveries in the client API: list, test, redeliver ---------------------------------------------------


def test_list_test_and_redeliver(api, client_obj):
    with Listener(statuses=[500]) as hook:
        created = create(api, client_obj, url=hook.url).json()
        base = f"/api/client/{client_obj.pk}/webhooks/{created['id']}"
        r = api.post(f"{base}/test")
        assert r.status_code == 202 and r.json()["status"] == "pending" and r.json()["event_type"] == "webhook.test"
        first = Notification.objects.get(pk=r.json()["id"])
        deliver(first)
        listed = api.get(f"{base}/deliveries").json()
        assert listed["total"] == 1
        assert {k: listed["deliveries"][0][k] for k in ("status", "attempts", "response_code")} == {
            "status": "failed", "attempts": 1, "response_code": 500}
        again = api.post(f"{base}/deliveries/{first.pk}/redeliver")
        assert again.status_code == 202
        second = Notification.objects.get(pk=again.json()["id"])
        assert second.event_id == first.event_id and second.payload == first.payload
        assert deliver(second)["status"] == "sent"
    assert hook.headers[0]["webhook-id"] == hook.headers[1]["webhook-id"] == first.event_id
    assert hook.raw[0] == hook.raw[1]
    listed = api.get(f"{base}/deliveries").json()
    assert [d["status"] for d in listed["deliveries"]] == ["sent", "failed"]
    assert api.post(f"{base}/deliveries/not-a-number/redeliver").status_code == 404


def test_the_operators_webhook_stays_and_never_stores_its_url(client_obj, settings):
    """The server-wide setting is the operator's own channel; with the receiver down the stored error
    names only scheme and host."""
    settings.TERMINATION_NOTIFICATION_WEBHOOK = "http://127.0.0.1:9/services/T000/B000/secret-part"
    row = services.notification_enqueue(kind="termination_notice", text="hello", client=client_obj)
    deliver(row)
    row.refresh_from_db()
    assert row.last_error and "secret-part" not in row.last_error and "127.0.0.1" in row.last_error
    assert "secret-part" not in row.attempt_log.get().error


def test_the_operators_termination_message_escapes_the_agents_hostname(api, client_obj, settings,
                                                                         django_capture_on_commit_callbacks):
    settings.TERMINATION_NOTIFICATION_WEBHOOK = "http://127.0.0.1:9/unused"
    agent = AgentFactory(client=client_obj, current_pool=SpotPoolFactory(az="us-east-1a"), hostname=ATTACKER_HOSTNAME)
    with django_capture_on_commit_callbacks(execute=False):
        api.post(f"/api/agents/{agent.pk}/termination-imminent", notice(agent), format="json")
    text = Notification.objects.get(endpoint__isnull=True).text
    assert "<!channel>" not in text and "<https://evil" not in text and "&lt;!channel&gt;" in text
    assert [line for line in text.splitlines() if line.startswith("Decision:")] == [
        line for line in text.splitlines() if line.startswith("Decision: ") and "all clear" not in line]
    assert sum(line.startswith("Decision:") for line in text.splitlines()) == 1


def test_endpoints_of_one_client_are_limited(client_obj):
    for i in range(services.ENDPOINTS_PER_CLIENT_MAX):
        endpoint_for(client_obj, f"https://hooks.example.com/{i}")
    with pytest.raises(services.InvalidInput):
        endpoint_for(client_obj, "https://hooks.example.com/one-too-many")
    assert ClientFactory()  # another client is not affected


def test_the_admin_lists_endpoints_without_their_secret_or_path(admin_client, client_obj):
    endpoint = endpoint_for(client_obj, "https://hooks.example.com/services/T0/B0/s3cr3t-path")
    services.webhook_endpoint_test(endpoint=endpoint)
    listing = admin_client.get("/admin/notifications/webhookendpoint/")
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "https://hooks.example.com" in html and "s3cr3t-path" not in html and endpoint.secret not in html
    page = admin_client.get(f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/").content.decode()
    assert endpoint.secret not in page and endpoint.secret[:10] in page
    assert admin_client.get("/admin/notifications/notification/").status_code == 200
    r = admin_client.post("/admin/notifications/webhookendpoint/add/", {
        "client": str(client_obj.pk), "url": "https://169.254.169.254/latest", "description": "", "events": "[]",
        "format": "standard", "enabled": "on"})
    assert r.status_code == 200 and WebhookEndpoint.objects.count() == 1  # refused: the form shows the error
    r = admin_client.post("/admin/notifications/webhookendpoint/add/", {
        "client": str(client_obj.pk), "url": "https://hooks.example.com/new", "description": "", "events":
        '["agent.offline"]', "format": "slack", "enabled": "on"}, follow=True)
    shown = [str(m) for m in r.context["messages"] if "shown once" in str(m)][0].rsplit(": ", 1)[1]
    assert WebhookEndpoint.objects.get(url="https://hooks.example.com/new").secret == shown


def test_an_endless_answer_is_read_only_up_to_the_cap(client_obj):
    """A receiver that answers 200, sends 1 MiB and then holds the connection open: the sender reads at
    most RESPONSE_BODY_MAX bytes and moves on (reading it all would end in the read time-out, a failure)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    release = threading.Event()

    class Endless(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            try:
                self.wfile.write(b"x" * (1024 * 1024))
                self.wfile.flush()
            except OSError:
                pass  # the sender hung up after its cap
            release.wait(30)  # never ends the body by itself

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = webhook_send(url=f"http://127.0.0.1:{server.server_address[1]}/hook", body=b"{}", headers={})
    finally:
        release.set()
        server.shutdown()
        server.server_close()
    assert result.ok is True and result.status_code == 200, result
