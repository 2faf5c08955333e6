"""Services raise domain errors (spotbackend/exceptions.py); the one handler maps them to HTTP with the
same JSON body as every other error."""
import json

import pytest

from spotbackend.exceptions import ApplicationError, ConflictError, InvalidInput, NotFoundError, json_exception_handler


def render(exc):
    response = json_exception_handler(exc, {"view": None})
    return response.status_code, json.loads(json.dumps(response.data))


@pytest.mark.parametrize("exc,status,body", [
    (ConflictError("A switch is in progress."), 409, {"success": False, "error": "A switch is in progress."}),
    (NotFoundError("Replica not found."), 404, {"success": False, "error": "Replica not found."}),
    (InvalidInput("Both cannot be on."), 400, {"success": False, "error": "Both cannot be on."}),
    (InvalidInput(fields={"replica_count": "Must be between 0 and 5."}), 400,
     {"success": False, "error": "replica_count: Must be between 0 and 5.",
      "fields": {"replica_count": "Must be between 0 and 5."}}),
    (ConflictError(), 409, {"success": False, "error": "Conflict with the current state."}),
])
def test_domain_errors_map_to_http(exc, status, body):
    assert render(exc) == (status, body)


def test_domain_errors_are_one_family():
    for kind in (ConflictError, NotFoundError, InvalidInput):
        assert issubclass(kind, ApplicationError)
