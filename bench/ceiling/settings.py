"""The ceiling of `make bench`: the same Django and DRF as the server, one view, nothing else.

No database, no authentication, no sessions: SecurityMiddleware and CommonMiddleware only, JSON
renderer and parser only. What the server costs above this is its own work (docs/PERFORMANCE.md).
"""
import os

DEBUG = False
SECRET_KEY = os.environ.get("SECRET_KEY", "bench-ceiling-not-secret")
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
INSTALLED_APPS = ["rest_framework"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "ceiling.urls"
WSGI_APPLICATION = "ceiling.wsgi.application"
# Same as the server: the agents never follow a redirect to a slashed URL.
APPEND_SLASH = False
DATABASES = {}
USE_TZ = True
TIME_ZONE = "UTC"
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}
