"""Every error is JSON: `{"error": <message>, "detail": ...}`; the agents and installers read no HTML."""
import logging
import sys

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict with the current state."
    default_code = "conflict"


class ApplicationError(Exception):
    """A domain error a service raises: it knows nothing of HTTP. The one handler below maps each
    kind to a status code; the admin and tasks catch these, never HTTP types."""

    default_message = "The request cannot be carried out."

    def __init__(self, message: str = "", *, fields: dict | None = None):
        self.message = message or self.default_message
        self.fields = fields  # {field: message} when the error names input fields
        super().__init__(self.message)


class InvalidInput(ApplicationError):
    """The input is well-formed but not acceptable (400)."""

    default_message = "Invalid input."


class NotFoundError(ApplicationError):
    """The thing named does not exist, or is not the caller's (404)."""

    default_message = "Not found."


class ConflictError(ApplicationError):
    """The request conflicts with the current state, e.g. an illegal state move (409)."""

    default_message = "Conflict with the current state."


def _as_http(exc: ApplicationError) -> exceptions.APIException:
    """The DRF exception that renders a domain error, so that the body keeps one shape."""
    if isinstance(exc, NotFoundError):
        return exceptions.NotFound(exc.message)
    if isinstance(exc, ConflictError):
        return Conflict(exc.message)
    return exceptions.ValidationError(exc.fields if exc.fields else {"detail": exc.message})


def _message(detail) -> str:
    if isinstance(detail, dict):
        parts = []
        for field, value in detail.items():
            text = _message(value)
            parts.append(text if field in ("non_field_errors", "detail") else f"{field}: {text}")
        return "; ".join(parts)
    if isinstance(detail, list):
        return "; ".join(_message(v) for v in detail)
    return str(detail)


# A database that is down, hung (timed out) or refusing (circuit open): "try again shortly".
DATABASE_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 5


def database_unavailable_response() -> JsonResponse:
    response = JsonResponse(
        {"success": False, "error": "Database temporarily unavailable; retry shortly."}, status=503
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def json_exception_handler(exc, context):
    if isinstance(exc, DATABASE_ERRORS):
        logger.warning("Database unavailable in %s: %s", context.get("view"), exc)
        return database_unavailable_response()
    if isinstance(exc, ApplicationError):
        exc = _as_http(exc)
    if isinstance(exc, RequestDataTooBig):
        from spotbackend.parsers import PayloadTooLarge

        exc = PayloadTooLarge()
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) if str(exc) else "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled error in %s", context.get("view"))
        return JsonResponse({"success": False, "error": "Internal server error."}, status=500)
    detail = response.data
    body = {"success": False, "error": _message(detail)}
    if isinstance(detail, dict) and set(detail) - {"detail"}:
        body["fields"] = detail
    response.data = body
    return response


def handler404(request, exception=None):
    return JsonResponse({"success": False, "error": "Not found."}, status=404)


def handler500(request):
    # Django calls this inside its `except` block, so the exception is still at hand: a database
    # failure outside a view (a middleware, the session save) is a 503 too.
    if isinstance(sys.exc_info()[1], DATABASE_ERRORS):
        return database_unavailable_response()
    return JsonResponse({"success": False, "error": "Internal server error."}, status=500)


def handler400(request, exception=None):
    return JsonResponse({"success": False, "error": "Bad request."}, status=400)


def handler403(request, exception=None):
    return JsonResponse({"success": False, "error": "Forbidden."}, status=403)
