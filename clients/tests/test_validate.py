"""GET /api/client/validate: the dashboard's login and the installers' token check (docs/API.md §2, §3)."""
import pytest
from rest_framework.test import APIClient

from clients.tests.factories import ClientFactory
from conftest import bearer
from spotbackend.throttling import TokenFailureThrottle


def test_valid_token_answers_the_exact_shape(api, client_obj):
    r = api.get("/api/client/validate")
    assert r.status_code == 200
    assert r.json() == {"valid": True, "client_id": str(client_obj.pk), "name": client_obj.name, "email": client_obj.email}


@pytest.mark.parametrize("header", [None, "Bearer nope-not-a-token", "Bearer", "Token something"])
def test_missing_or_unknown_token_is_401_json(db, header):
    api = APIClient()
    if header:
        api.credentials(HTTP_AUTHORIZATION=header)
    r = api.get("/api/client/validate")
    assert r.status_code == 401
    assert r["Content-Type"].startswith("application/json")
    assert r.json()["success"] is False


def test_inactive_client_is_403_json(db):
    inactive = ClientFactory(is_active=False)
    r = bearer(inactive).get("/api/client/validate")
    assert r.status_code == 403
    assert r["Content-Type"].startswith("application/json")
    assert "inactive" in r.json()["error"].lower()


def test_guessing_is_throttled_with_a_json_429(db, client_obj, monkeypatch):
    monkeypatch.setattr(TokenFailureThrottle, "rate", "3/min", raising=False)
    guesser = APIClient()
    guesser.credentials(HTTP_AUTHORIZATION="Bearer guess")
    codes = [guesser.get("/api/client/validate").status_code for _ in range(3)]
    assert codes == [401, 401, 401]
    r = guesser.get("/api/client/validate")
    assert r.status_code == 429
    assert r["Content-Type"].startswith("application/json")
    assert r.json()["success"] is False
    # Only failures are counted and refused: the right token from the same address still works.
    assert bearer(client_obj).get("/api/client/validate").status_code == 200


def test_throttle_rate_comes_from_settings():
    from django.conf import settings

    assert TokenFailureThrottle.scope in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
