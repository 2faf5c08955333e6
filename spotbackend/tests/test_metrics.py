"""/metrics (docs/OPERATIONS.md, "Health and metrics"): off without METRICS_TOKEN, only for the Bearer
token otherwise, Prometheus text with every name under spotbackend_, values that move after real calls.
Scraped and parsed with prometheus_client's own parser."""
import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from agents.models import AgentStatus
from agents.tests.factories import AgentFactory, SpotPoolFactory
from notifications.models import Notification
from ops.models import JobStat

pytestmark = pytest.mark.django_db

TOKEN = "metrics-test-token-0123456789abcdef"


@pytest.fixture
def scrape(client, settings):
    settings.METRICS_TOKEN = TOKEN

    def get() -> dict:
        r = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert r.status_code == 200, r.content
        assert r["Content-Type"].startswith("text/plain")
        families = list(text_string_to_metric_families(r.content.decode()))
        samples = {}
        for family in families:
            assert family.name.startswith("spotbackend_"), family.name
            for s in family.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return samples

    return get


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_off_without_a_token_and_hidden_from_others(client, settings):
    settings.METRICS_TOKEN = ""
    r = client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything")
    assert r.status_code == 404 and r.json()["success"] is False
    settings.METRICS_TOKEN = TOKEN
    for header in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": f"Basic {TOKEN}"},
                   {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}x"}):
        r = client.get("/metrics", **header)
        assert r.status_code == 404 and r.json() == {"success": False, "error": "Not found."}
        assert b"spotbackend_" not in r.content
    r = client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert r.status_code == 405 and r.json()["success"] is False
    head = client.head("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert head.status_code == 200 and head.content == b""
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_requests_are_counted_by_route_method_status_with_latency(scrape, api, client_obj):
    agent = AgentFactory(client=client_obj)
    route = "api/agents/<str:agent_id>/heartbeat"
    before = scrape()
    for _ in range(3):
        assert api.post(f"/api/agents/{agent.pk}/heartbeat", {"status": "online"}, format="json").status_code == 200
    assert api.post("/api/agents/no-such-agent/heartbeat", {"status": "online"}, format="json").status_code == 404
    api.get("/no/such/path/12345")
    after = scrape()
    assert value(after, "spotbackend_http_requests_total", route=route, method="POST", status="200") \
        - value(before, "spotbackend_http_requests_total", route=route, method="POST", status="200") == 3
    assert value(after, "spotbackend_http_requests_total", route=route, method="POST", status="404") \
        - value(before, "spotbackend_http_requests_total", route=route, method="POST", status="404") == 1
    assert value(after, "spotbackend_http_request_duration_seconds_count", route=route, method="POST") \
        - value(before, "spotbackend_http_request_duration_seconds_count", route=route, method="POST") == 4
    assert value(after, "spotbackend_http_request_duration_seconds_sum", route=route, method="POST") > \
        value(before, "spotbackend_http_request_duration_seconds_sum", route=route, method="POST")
    # The raw path never becomes a label.
    assert not any("no-such-agent" in str(k) or "/no/such/path" in str(k) for k in after)
    assert value(after, "spotbackend_http_requests_total", route="unmatched", method="GET", status="404") >= 1


def test_notices_and_decisions_by_kind_and_action_with_decision_latency(scrape, api, client_obj):
    pool = SpotPoolFactory(az="us-east-1a")
    SpotPoolFactory(az="us-east-1b", risk_recommendation="safe")
    agent = AgentFactory(client=client_obj, current_pool=pool)
    body = {"instance_id": agent.instance_id, "termination_time": "2025-01-01T00:02:00Z"}
    before = scrape()
    first = api.post(f"/api/agents/{agent.pk}/termination-imminent", body, format="json")
    repeat = api.post(f"/api/agents/{agent.pk}/termination-imminent", body, format="json")
    assert first.status_code == repeat.status_code == 200
    assert first.json()["action"] == repeat.json()["action"] == "create_emergency_replica"
    after = scrape()

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("spotbackend_notices_total", kind="termination_notice", action="create_emergency_replica") == 2
    assert moved("spotbackend_notice_decision_seconds_count", kind="termination_notice") == 2
    assert moved("spotbackend_notice_errors_total", kind="termination_notice") == 0
    # The first notice decided (the repeat only answers it again): one termination decision.
    assert moved("spotbackend_decisions_total", kind="termination", action="create_emergency_replica") == 1
    assert moved("spotbackend_http_requests_total", route="api/agents/<str:agent_id>/termination-imminent",
                 method="POST", status="200") == 2


@pytest.mark.django_db(transaction=True)  # collectors read on their own connection
def test_fleet_and_outbox_gauges_come_from_their_periodic_tasks(scrape, client_obj, settings):
    from agents.tasks import agents_metrics_refresh
    from notifications.tasks import outbox_metrics_refresh_task

    now = timezone.now()
    AgentFactory.create_batch(3, client=client_obj, last_heartbeat_at=now)
    AgentFactory(client=client_obj, status=AgentStatus.OFFLINE, last_heartbeat_at=now)
    AgentFactory(client=client_obj, last_heartbeat_at=now - timezone.timedelta(hours=2))  # stale
    Notification.objects.create(kind="t", text="x", next_attempt_at=now, retry_until=now,
                                created_at=now - timezone.timedelta(minutes=10))
    Notification.objects.create(kind="t", text="y", status="failed", next_attempt_at=now, retry_until=now,
                                created_at=now)
    before = scrape()
    assert value(before, "spotbackend_agents", status="online") == 0  # not refreshed yet
    agents_metrics_refresh.apply().get()
    outbox_metrics_refresh_task.apply().get()
    after = scrape()
    assert value(after, "spotbackend_agents", status="online") == 4
    assert value(after, "spotbackend_agents", status="offline") == 1
    assert value(after, "spotbackend_agents", status="switching") == 0
    assert value(after, "spotbackend_agents_stale") == 1
    assert value(after, "spotbackend_agents_newest_heartbeat_timestamp_seconds") == pytest.approx(now.timestamp(), abs=1)
    assert value(after, "spotbackend_notification_outbox_pending") == 1
    assert value(after, "spotbackend_notification_outbox_failed") == 1
    assert value(after, "spotbackend_notification_outbox_oldest_pending_age_seconds") >= 600
    assert value(after, "spotbackend_metrics_snapshot_timestamp_seconds", snapshot="agents") > 0
    # The two refreshes are scheduled jobs themselves: their runs are counted.
    assert value(after, "spotbackend_job_runs_total", task="agents.tasks.agents_metrics_refresh") == 1


@pytest.mark.django_db(transaction=True)
def test_scheduled_jobs_duration_last_success_and_failures(scrape, monkeypatch):
    from agents import periodic

    task = "agents.periodic.replica_lifecycle_sweep"
    periodic.replica_lifecycle_sweep.apply().get()
    after_success = scrape()
    assert value(after_success, "spotbackend_job_runs_total", task=task) == 1
    assert value(after_success, "spotbackend_job_failures_total", task=task) == 0
    assert value(after_success, "spotbackend_job_duration_seconds_count", task=task) == 1
    assert value(after_success, "spotbackend_job_last_success_timestamp_seconds", task=task) == pytest.approx(
        timezone.now().timestamp(), abs=60)
    assert value(after_success, "spotbackend_job_interval_seconds", task=task) == 300

    def broken():
        raise RuntimeError("database went away")

    monkeypatch.setattr(periodic, "replicas_sweep", broken)
    periodic.replica_lifecycle_sweep.apply()
    after_failure = scrape()
    assert value(after_failure, "spotbackend_job_runs_total", task=task) == 2
    assert value(after_failure, "spotbackend_job_failures_total", task=task) == 1
    assert value(after_failure, "spotbackend_job_last_success_timestamp_seconds", task=task) == \
        value(after_success, "spotbackend_job_last_success_timestamp_seconds", task=task)
    assert "database went away" in JobStat.objects.get(pk=task).last_error


def test_celery_queue_length_is_reported(scrape):
    samples = scrape()
    assert value(samples, "spotbackend_celery_queue_length", queue="celery") >= 0
    assert ("spotbackend_celery_queue_length", (("queue", "celery"),)) in samples


def test_a_failing_collector_leaves_the_others(scrape, monkeypatch):
    from spotbackend import metrics

    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(metrics, "_collectors", [broken, *metrics._collectors])
    samples = scrape()
    assert value(samples, "spotbackend_metrics_collector_up", collector=broken.__qualname__) == 0
    assert any(k[0] == "spotbackend_celery_queue_length" for k in samples)


def test_a_failing_notice_counts_as_an_error_a_gone_agent_does_not(scrape, api, client_obj, monkeypatch):
    from agents.services import termination
    from spotbackend.exceptions import NotFoundError

    agent = AgentFactory(client=client_obj)
    body = {"instance_id": agent.instance_id, "termination_time": "2025-01-01T00:02:00Z"}
    url = f"/api/agents/{agent.pk}/termination-imminent"
    route = "api/agents/<str:agent_id>/termination-imminent"
    before = scrape()

    def gone(**kwargs):
        raise NotFoundError("Agent not found.")

    monkeypatch.setattr(termination, "_termination_first", gone)
    assert api.post(url, body, format="json").status_code == 404

    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(termination, "_termination_first", broken)
    api.raise_request_exception = False
    r = api.post(url, body, format="json")
    assert r.status_code == 500 and r.json()["success"] is False
    after = scrape()
    assert value(after, "spotbackend_notice_errors_total", kind="termination_notice") - \
        value(before, "spotbackend_notice_errors_total", kind="termination_notice") == 1
    for status in ("404", "500"):
        assert value(after, "spotbackend_http_requests_total", route=route, method="POST", status=status) - \
            value(before, "spotbackend_http_requests_total", route=route, method="POST", status=status) == 1
