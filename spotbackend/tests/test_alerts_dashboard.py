"""deploy/prometheus/alerts.yml and deploy/grafana/spotbackend.json only use metrics /metrics exports
(a renamed metric would silently never alert). Their PromQL syntax and the alerts' behaviour are checked
by promtool (`make check-alerts`, in CI)."""
import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "spotbackend.json"
TOKEN = "alerts-dashboard-test-token-0123456789"


def expressions():
    rules = [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
    assert len(rules) >= 10
    yield from ((f"alert {r['alert']}", r["expr"]) for r in rules)
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield f"panel {panel['title']}", target["expr"]


@pytest.fixture
def exported(client, settings, transactional_db):
    """Every metric name /metrics serves once the periodic tasks have run."""
    from django.utils import timezone

    from agents.tasks import agents_metrics_refresh
    from agents.tests.factories import AgentFactory
    from notifications.tasks import outbox_metrics_refresh_task

    AgentFactory(last_heartbeat_at=timezone.now())
    agents_metrics_refresh.apply().get()
    outbox_metrics_refresh_task.apply().get()
    settings.METRICS_TOKEN = TOKEN
    r = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert r.status_code == 200
    names = set()
    for family in text_string_to_metric_families(r.content.decode()):
        names |= {family.name + suffix for suffix in ("", "_total", "_bucket", "_count", "_sum")}
    return names


def test_alerts_and_panels_use_exported_metrics(exported):
    used = set()
    for where, expr in expressions():
        found = set(re.findall(r"\bspotbackend_[a-z0-9_]+", expr))
        assert found, (where, expr)
        missing = found - exported
        assert not missing, f"{where} uses {sorted(missing)}, not exported"
        used |= found
    # The list is covered: fleet, hot path, notices, decisions, jobs, outbox, queue.
    for name in ("spotbackend_agents", "spotbackend_agents_stale", "spotbackend_http_requests_total",
                 "spotbackend_http_request_duration_seconds_bucket", "spotbackend_notices_total",
                 "spotbackend_decisions_total", "spotbackend_notice_decision_seconds_bucket",
                 "spotbackend_job_last_success_timestamp_seconds", "spotbackend_job_failures_total",
                 "spotbackend_notification_outbox_pending", "spotbackend_notification_outbox_failed",
                 "spotbackend_notification_outbox_oldest_pending_age_seconds", "spotbackend_celery_queue_length"):
        assert name in used, name


def test_no_label_is_a_raw_path_or_an_agent():
    """Bounded labels: alerts and panels group by route, status, kind, action, task, queue, never by agent."""
    for where, expr in expressions():
        for labels in re.findall(r"by \(([^)]*)\)", expr):
            assert set(map(str.strip, labels.split(","))) <= {"le", "route", "status", "kind", "action", "task",
                                                              "queue", "outcome", "snapshot"}, (where, labels)
