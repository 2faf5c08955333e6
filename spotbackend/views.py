from django.db import connection
from django.utils import timezone
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.response import Response

from spotbackend.exceptions import RETRY_AFTER_SECONDS


@api_view(["GET"])
@authentication_classes([])
@permission_classes([])
def health(request):
    """The installers abort unless this answers 200."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any database failure means "not healthy"
        return Response({"status": "unhealthy", "database": "unavailable", "error": str(exc)[:200]}, status=503,
                        headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return Response({"status": "healthy", "database": "ok", "time": timezone.now()})
