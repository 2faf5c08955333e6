"""Request-level guards: a database failure in any view (DRF or not, e.g. the admin) answers 503 JSON
with Retry-After instead of a 500 (spotbackend/exceptions.py has the DRF and handler500 halves)."""
import logging

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
