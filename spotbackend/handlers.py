"""Two middleware stacks in one WSGI application: the API (agents, dashboard, installers) does not
pay for what only the admin uses (static files, sessions, CSRF, users, messages, frame options): about 50 us of
CPU per request, ~9 % of an agent call (docs/PERFORMANCE.md). Every other middleware runs on both."""
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

API_PREFIXES = ("/api/", "/health")


class _ApiHandler(WSGIHandler):
    def load_middleware(self, is_async=False):
        # BaseHandler reads settings.MIDDLEWARE; swap it for the time of loading (at startup, once).
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = [m for m in full if m not in settings.ADMIN_ONLY_MIDDLEWARE]
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


class SplitApplication:
    def __init__(self):
        self.full = WSGIHandler()
        self.api = _ApiHandler()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        handler = self.api if path.startswith(API_PREFIXES) else self.full
        return handler(environ, start_response)
