"""Shared fixtures. Tests run against the database of DATABASE_URL: MariaDB under `make test`."""
import os

import pytest
from rest_framework.test import APIClient

from clients.tests.factories import ClientFactory


def bearer(client_obj) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {client_obj.token}")
    return api


@pytest.fixture
def client_obj(db):
    return ClientFactory()


@pytest.fixture
def other_client(db):
    return ClientFactory()


@pytest.fixture
def api(client_obj) -> APIClient:
    """An API client authenticated as `client_obj`."""
    return bearer(client_obj)


@pytest.fixture
def other_api(other_client) -> APIClient:
    return bearer(other_client)


TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session", autouse=True)
def _celery_task_modules():
    """Every task module imported before the first test, as the worker does at start. `broker_at`
    below closes the project's Celery app, and Celery's `close()` also takes it off the list of apps
    that a task module imported later registers its tasks with (`pytest spotbackend` then missed
    `notifications.*`)."""
    from spotbackend.celery import app

    app.loader.import_default_modules()


@pytest.fixture(autouse=True)
def _fresh_process_state(settings):
    """Every test starts with an empty Django cache on the real Redis (TEST_REDIS_URL; `make test`
    starts one when it is down), as in production, and no cached tokens. Heartbeats are written at
    once unless a test turns the buffer on (agents/tests/test_hotpath.py)."""
    from django.core.cache import cache

    from agents.cache import breaker
    from clients.services import client_tokens_forget
    from notifications.services.publish import publish_breaker

    redis = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": TEST_REDIS_URL}
    settings.CACHES = {"default": redis, "agents": redis}
    breaker.reset()
    publish_breaker.reset()
    cache.clear()
    client_tokens_forget()
    settings.HEARTBEAT_BUFFER_SECONDS = 0


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis every Redis-backed test uses: TEST_REDIS_URL (`make test` starts one when it is down)."""
    return TEST_REDIS_URL


@pytest.fixture(autouse=True)
def _publish_notifications_inline(settings):
    """Tests see a notification handed to the broker by the committing thread (the background publisher
    is tested on its own, notifications/tests/test_publish_background.py)."""
    settings.NOTIFICATION_PUBLISH_BACKGROUND = False


@pytest.fixture
def broker_at():
    """Point the real Celery app at a broker URL of the test's choosing, and restore it afterwards:
    `point(url, timeout=1)`. Its connection pool is dropped with Celery's `close()` and its producer
    pool with the `amqp` cached property (rebuilt on next use); the outbox's breaker starts closed."""
    from notifications.services.publish import background_publisher, publish_breaker
    from spotbackend.celery import app

    saved = (app.conf.broker_url, app.conf.broker_transport_options)

    def fresh_connections():
        app.close()
        del app.amqp

    def point(url, timeout=1):
        app.conf.broker_url = url
        app.conf.broker_transport_options = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
        publish_breaker.reset()
        fresh_connections()

    yield point
    background_publisher.join()  # nothing of the test left in flight
    app.conf.broker_url, app.conf.broker_transport_options = saved
    fresh_connections()
