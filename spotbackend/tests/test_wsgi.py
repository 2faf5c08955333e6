"""The WSGI application serves the API without sessions or cookies and the admin with them."""
import io

import pytest

from spotbackend.wsgi import application

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """As Django's test client does: a request must not close the test's open transaction."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def wsgi(path, method="GET", headers=None):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "testserver",
               "SERVER_PORT": "80", "HTTP_HOST": "testserver", "wsgi.input": io.BytesIO(b""), "CONTENT_LENGTH": "0",
               "wsgi.url_scheme": "http", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", **(headers or {})}
    seen = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"], seen["headers"] = status, response_headers

    body = b"".join(application(environ, start_response))
    return int(seen["status"].split()[0]), dict(seen["headers"]), body


def test_api_sets_no_cookie(settings, client_obj, api):
    status, headers, body = wsgi("/api/client/validate", headers={"HTTP_AUTHORIZATION": f"Bearer {client_obj.token}"})
    assert status == 200 and b'"valid":true' in body
    assert "Set-Cookie" not in headers  # the pages' middleware skipped


def test_admin_keeps_sessions_and_csrf():
    status, headers, body = wsgi("/admin/login/")
    assert status == 200
    assert "csrftoken" in headers.get("Set-Cookie", "") and headers["X-Frame-Options"] == "DENY"
