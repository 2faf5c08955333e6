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


# --- Middleware of the admin's pages, skipped by the API ---------------------------------------------
# Sessions, users and messages serve the staff's pages (/admin/); an agent's
# call, a probe or a scrape does not pay for them (docs/PERFORMANCE.md, the ablation table). Each class
# below is Django's own, run for every other path as it is.
API_PATHS = ("/api/", "/health", "/metrics")


def pages_only(middleware_class):
    class PagesOnly(middleware_class):
        def __call__(self, request):
            if request.path_info.startswith(API_PATHS):
                return self.get_response(request)
            return super().__call__(request)

    PagesOnly.__name__ = PagesOnly.__qualname__ = middleware_class.__name__
    PagesOnly.__doc__ = f"Django's {middleware_class.__name__}, skipped for {', '.join(API_PATHS)}."
    return PagesOnly


def _django(path: str):
    from django.utils.module_loading import import_string

    return import_string(path)


SessionMiddleware = pages_only(_django("django.contrib.sessions.middleware.SessionMiddleware"))
AuthenticationMiddleware = pages_only(_django("django.contrib.auth.middleware.AuthenticationMiddleware"))
MessageMiddleware = pages_only(_django("django.contrib.messages.middleware.MessageMiddleware"))
