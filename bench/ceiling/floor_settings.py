"""Settings of the floor (bench/ceiling/floor.py): the ceiling's, its URLs, Django's cache on Redis
(FLOOR_REDIS_URL) and, with FLOOR_OPS=1, the server's request-id and metrics middleware."""
import os

from ceiling.settings import *  # noqa: F403
from ceiling.settings import MIDDLEWARE

ROOT_URLCONF = "ceiling.floor"
CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": os.environ["FLOOR_REDIS_URL"],
                      "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.25, "SOCKET_TIMEOUT": 0.25}}}
if os.environ.get("FLOOR_OPS") == "1":
    MIDDLEWARE = ["spotbackend.metrics.MetricsMiddleware", "spotbackend.logs.RequestIdMiddleware", *MIDDLEWARE]
