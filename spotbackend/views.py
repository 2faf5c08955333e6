import logging

from django.conf import settings
from django.db import connection
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.response import Response

from spotbackend.exceptions import RETRY_AFTER_SECONDS

logger = logging.getLogger(__name__)

_redis_client = None


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # any database failure means "not healthy"
        logger.warning("health: database check failed", exc_info=True)
        return False
    return True


def _redis_ok() -> bool:
    global _redis_client
    try:
        if _redis_client is None:
            import redis

            # Short timeouts: a hung Redis must not hang the load balancer's probe.
            _redis_client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        _redis_client.ping()
    except Exception:
        logger.warning("health: redis check failed", exc_info=True)
        return False
    return True


CHECK = ["ok", "unavailable"]


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["healthy", "unhealthy"])
    database = serializers.ChoiceField(choices=CHECK)
    redis = serializers.ChoiceField(choices=CHECK, required=False, help_text="Present when REDIS_URL is set.")
    time = serializers.DateTimeField(required=False, help_text="Present when healthy.")


@extend_schema(responses={200: HealthSerializer, 503: HealthSerializer}, auth=[])
@api_view(["GET", "HEAD"])
@authentication_classes([])
@permission_classes([])
def health(request):
    """The installers abort unless this answers 200; load balancers probe it with HEAD.

    Names each dependency that is down, never its error text (that goes to the log).
    """
    checks = {"database": _database_ok()}
    if settings.REDIS_URL:
        checks["redis"] = _redis_ok()
    healthy = all(checks.values())
    status = 200 if healthy else 503
    if request.method == "HEAD":
        return Response(status=status, headers={} if healthy else {"Retry-After": str(RETRY_AFTER_SECONDS)})  # no body: HEAD answers must not carry one
    body = {name: "ok" if ok else "unavailable" for name, ok in checks.items()}
    if not healthy:
        return Response({"status": "unhealthy", **body}, status=status,
                        headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return Response({"status": "healthy", **body, "time": timezone.now()})
