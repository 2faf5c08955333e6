"""Request-level guards: an over-large body is refused with 413 JSON before it is read; a database failure in any view (DRF or not, e.g. the admin) answers 503 JSON
with Retry-After instead of a 500 (spotbackend/exceptions.py has the DRF and handler500 halves)."""
import logging

from django.conf import settings
from django.http import JsonResponse

from spotbackend.exceptions import DATABASE_ERRORS, database_unavailable_response

logger = logging.getLogger(__name__)


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, DATABASE_ERRORS):
            logger.warning("Database unavailable on %s: %s", request.path, exception)
            return database_unavailable_response()
        return None


class BodySizeLimitMiddleware:
    """Refuse a body announced larger than DATA_UPLOAD_MAX_MEMORY_SIZE before reading it (413 JSON).
    The JSON parser enforces the same limit on what it actually reads."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"success": False, "error": "Invalid Content-Length header."}, status=400)
        if limit is not None and length > limit:
            return JsonResponse(
                {"success": False, "error": f"Request body larger than {limit} bytes."}, status=413
            )
        return self.get_response(request)
