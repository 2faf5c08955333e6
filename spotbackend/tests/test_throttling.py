"""Throttles behind proxies (issue 10, item 5): the address comes from NUM_PROXIES trusted proxies only;
failed token attempts are throttled per address without locking out good tokens; admin logins limited."""
import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from rest_framework.test import APIClient

from agents.tests.factories import AgentFactory
from spotbackend.throttling import AdminLoginThrottle, TokenFailureThrottle

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def three_per_minute(monkeypatch):
    monkeypatch.setattr(TokenFailureThrottle, "rate", "3/min", raising=False)
    monkeypatch.setattr(AdminLoginThrottle, "rate", "3/h", raising=False)


def rest_framework(**over):
    from django.conf import settings

    return override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, **over})


def call(token, remote="203.0.113.7", xff=None, path="/api/client/validate"):
    api = APIClient(REMOTE_ADDR=remote)
    extra = {"HTTP_X_FORWARDED_FOR": xff} if xff else {}
    return api.get(path, HTTP_AUTHORIZATION=f"Bearer {token}", **extra).status_code


def test_without_trusted_proxies_a_made_up_forwarded_for_changes_nothing(client_obj):
    codes = [call("guess", xff=f"198.51.100.{i}") for i in range(5)]
    assert codes == [401, 401, 401, 429, 429]
    assert call("guess", remote="203.0.113.8") == 401  # another address has its own count
    assert call(client_obj.token) == 200  # the good token behind the same address is not locked out


def test_behind_one_trusted_proxy_the_address_it_adds_counts(client_obj):
    with rest_framework(NUM_PROXIES=1):
        # The client prepends fake entries; only the one our proxy appended (the last) is used.
        codes = [call("guess", remote="10.0.0.2", xff=f"6.6.6.{i}, 198.51.100.9") for i in range(4)]
        assert codes == [401, 401, 401, 429]
        # Another client behind the same proxy is not affected.
        assert call("guess", remote="10.0.0.2", xff="198.51.100.10") == 401
        assert call(client_obj.token, remote="10.0.0.2", xff="198.51.100.9") == 200


def test_failures_on_agent_routes_count_too(client_obj):
    agent = AgentFactory(client=client_obj)
    path = f"/api/agents/{agent.pk}/config"
    assert [call("guess", path=path) for _ in range(4)] == [401, 401, 401, 429]
    assert call(client_obj.token, path=path) == 200


def test_admin_login_failures_are_limited_per_address():
    User.objects.create_superuser("boss", "boss@example.com", "right-password-123")
    attacker = Client(REMOTE_ADDR="203.0.113.50")
    for _ in range(3):
        r = attacker.post("/admin/login/", {"username": "boss", "password": "wrong"})
        assert r.status_code == 200 and b"errornote" in r.content  # the form again, with an error
    r = attacker.post("/admin/login/", {"username": "boss", "password": "right-password-123"})
    assert r.status_code == 429 and r.json()["success"] is False and int(r["Retry-After"]) > 0
    # Staff at another address log in normally.
    staff = Client(REMOTE_ADDR="198.51.100.1")
    r = staff.post("/admin/login/?next=/admin/", {"username": "boss", "password": "right-password-123"})
    assert r.status_code == 302
    assert staff.get("/admin/").status_code == 200
