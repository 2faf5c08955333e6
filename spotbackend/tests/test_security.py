"""Claims of docs/SECURITY.md that no other test shows."""
import pytest
from django.test import Client
from rest_framework.test import APIClient

from notifications.models import Notification
from notifications.services import notification_enqueue

pytestmark = pytest.mark.django_db


def test_a_client_token_does_not_open_the_admin(client_obj):
    r = Client().get("/admin/", HTTP_AUTHORIZATION=f"Bearer {client_obj.token}")
    assert r.status_code == 302 and "/admin/login/" in r["Location"]


def test_health_reveals_only_its_status():
    r = APIClient().get("/health")
    body = r.json()
    assert r.status_code == 200 and {"status", "database", "time"} <= set(body) <= {
        "status", "database", "redis", "broker", "jobs", "time"}
    assert all(body[k] in ("ok", "degraded") for k in set(body) - {"status", "time"})  # a word, never an error


def test_the_webhook_url_is_never_stored(settings, django_capture_on_commit_callbacks):
    settings.TERMINATION_NOTIFICATION_WEBHOOK = "https://hooks.example.invalid/services/T000/B000/secret-part"
    with django_capture_on_commit_callbacks(execute=False):
        notification_enqueue(kind="test", text="hello")
    row = Notification.objects.values().get()
    assert not any("secret-part" in str(v) for v in row.values())


def test_an_unexpected_error_answers_a_generic_json_500(api, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("internal detail: password=hunter2")

    monkeypatch.setattr("clients.api.views.ValidateApi.get", boom)
    r = api.get("/api/client/validate")
    assert r.status_code == 500
    assert r.json() == {"success": False, "error": "Internal server error."}
