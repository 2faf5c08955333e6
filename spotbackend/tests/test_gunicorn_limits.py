"""gunicorn.conf.py: long request lines and big headers reach Django (JSON answers). Beyond gunicorn's
maxima the proxy in front refuses them first, in JSON (deploy/nginx.conf)."""
import json
import socket

import pytest

from spotbackend.tests.live import gunicorn


def raw_request(port: int, head: bytes) -> tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data:
                header_blob, _, body = data.partition(b"\r\n\r\n")
                headers = dict(
                    line.split(": ", 1) for line in header_blob.decode("latin1").split("\r\n")[1:] if ": " in line
                )
                length = int(headers.get("Content-Length", 0))
                if len(body) >= length:
                    return int(header_blob.split(b" ")[1]), headers, body[:length]
    raise AssertionError(f"no full response: {data[:200]!r}")


def get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}\r\n".encode()


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_request_limits_answer_json(tmp_path):
    with gunicorn(tmp_path) as (_, port):
        # Up to gunicorn's maximum the request reaches Django, which answers JSON.
        status, headers, body = raw_request(port, get("/" + "a" * 8000))
        assert status == 404 and json.loads(body)["success"] is False
        status, headers, body = raw_request(port, get("/health", f"X-Big: {'b' * 12000}\r\n"))
        assert status == 200 and json.loads(body)["status"] == "healthy"
