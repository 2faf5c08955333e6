"""Issue 19 as an operator meets it, on a live gunicorn (2 workers, gunicorn.conf.py) whose Redis (cache
and Celery broker) is a private fake on a free loopback port, hung (accepts, never answers) or down
(closed): probes stay 200 while the database answers, a termination notice gets its decision, and
/metrics adds up both workers (prometheus_client's multiprocess mode)."""
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from agents.tests.factories import AgentFactory, SpotPoolFactory
from clients.tests.factories import ClientFactory
from notifications.models import Notification
from spotbackend.tests.faketcp import FakeTCP
from spotbackend.tests.live import gunicorn

TOKEN = "live-metrics-token-abcdefghijklmnopqrstuvwxyz"


def scrape(base) -> dict:
    r = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert r.status_code == 200, r.text[:300]
    samples = {}
    for family in text_string_to_metric_families(r.text):
        assert family.name.startswith("spotbackend_"), family.name
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", ["hung", "down"])
def test_redis_and_broker_unreachable_probes_200_notice_answers_metrics_add_up(tmp_path, mode):
    fake = FakeTCP()
    fake.set(mode)
    client = ClientFactory()
    pool = SpotPoolFactory(az="us-east-1a")
    SpotPoolFactory(az="us-east-1b", risk_recommendation="safe")
    agent = AgentFactory(client=client, current_pool=pool)
    env = {"WEB_CONCURRENCY": "2", "REDIS_URL": f"redis://127.0.0.1:{fake.port}/0", "METRICS_TOKEN": TOKEN,
           "HEALTH_CHECK_TIMEOUT": "0.5", "TERMINATION_NOTIFICATION_WEBHOOK": "http://127.0.0.1:9/hook"}
    try:
        with gunicorn(tmp_path, **env) as (base, _):
            for path in ("/health", "/health/ready"):
                r = requests.get(base + path, timeout=30)
                assert r.status_code == 200, r.text
                assert r.json()["status"] == "healthy" and r.json()["database"] == "ok"
                assert r.json()["redis"] == "degraded" and r.json()["broker"] == "degraded"
                assert requests.head(base + path, timeout=30).status_code == 200
            assert requests.get(f"{base}/health/live", timeout=30).json() == {"status": "alive"}

            r = requests.post(f"{base}/api/agents/{agent.pk}/termination-imminent",
                              json={"instance_id": agent.instance_id, "termination_time": "2025-01-01T00:02:00Z"},
                              headers={"Authorization": f"Bearer {client.token}"}, timeout=30)
            assert r.status_code == 200, r.text
            assert r.json()["create_emergency_replica"] is True
            assert Notification.objects.get().published_at is None  # broker unreachable: left to the sweep

            # Not public.
            assert requests.get(f"{base}/metrics", timeout=30).status_code == 404
            # Both workers answer over new connections; every scrape adds up both.
            for _ in range(20):
                assert requests.get(f"{base}/health/live", timeout=30).status_code == 200
            for _ in range(4):
                samples = scrape(base)
                assert value(samples, "spotbackend_http_requests_total", route="health/live", method="GET",
                             status="200") == 21
            assert value(samples, "spotbackend_notices_total", kind="termination_notice",
                         action="create_emergency_replica") == 1
            assert value(samples, "spotbackend_decisions_total", kind="termination",
                         action="create_emergency_replica") == 1
            assert value(samples, "spotbackend_notice_decision_seconds_count", kind="termination_notice") == 1
            pids = {p.name.split("_")[-1] for p in (tmp_path / "prometheus").glob("*.db")}
            assert len(pids) >= 2, pids  # files of both workers
    finally:
        fake.stop()
