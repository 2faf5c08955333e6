"""Project-level promises: health, JSON errors, admin for every model, OpenAPI, documented settings."""
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib import admin

from agents.tests.factories import AgentFactory, CommandFactory, ReplicaFactory, SwitchFactory, TerminationEventFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_health_ok(client):
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "healthy"


def test_unknown_path_is_json_404(client):
    r = client.get("/nowhere")
    assert r.status_code == 404 and r.json()["success"] is False


@pytest.mark.django_db
def test_openapi_schema(client):
    r = client.get("/api/schema", HTTP_ACCEPT="application/json")
    assert r.status_code == 200
    assert "/api/agents/register" in r.content.decode()


@pytest.mark.django_db
def test_admin_lists_and_opens_every_model(admin_client):
    agent = AgentFactory()
    CommandFactory(agent=agent)
    SwitchFactory(agent=agent)
    ReplicaFactory(agent=agent)
    TerminationEventFactory(agent=agent)
    ours = [m for m in apps.get_models() if m._meta.app_label in {"agents", "clients", "savings", "cleanup"}]
    assert ours
    for model in ours:
        assert admin.site.is_registered(model), model
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        r = admin_client.get(base)
        assert r.status_code == 200, base
        obj = model.objects.first()
        if obj is not None:
            assert admin_client.get(f"{base}{obj.pk}/change/").status_code == 200, base
        assert admin_client.get(base, {"q": "x"}).status_code == 200, base


def test_env_example_documents_every_setting():
    text = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    for name in ["DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "TERMINATION_REPLICA_AUTO_CREATE",
                 "TERMINATION_NOTIFICATION_WEBHOOK", "AUTO_CLEANUP_ENABLED", "CLEANUP_SNAPSHOTS_DAYS",
                 "CLEANUP_AMIS_DAYS", "SAVINGS_CALCULATION_HOUR", "AGENT_HEARTBEAT_TIMEOUT", "POOL_COOLDOWN_SECONDS",
                 "PRICE_FRESHNESS_SECONDS", "COMMAND_DELIVERY_TIMEOUT", "CONN_MAX_AGE", "STALE_AGENTS_INTERVAL_HOURS",
                 "WEBHOOK_ALLOW_PRIVATE_TARGETS", "WEBHOOK_ALLOW_HTTP", "WEBHOOK_DISABLE_AFTER_HOURS"]:
        assert name in text, name
        assert name in readme, name
