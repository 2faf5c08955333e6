from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView


class TokenValidateThrottle(SimpleRateThrottle):
    """Slows token guessing: counted per remote address, whatever the token."""

    scope = "token_validate"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class ValidateApi(APIView):
    throttle_classes = [TokenValidateThrottle]

    def initial(self, request, *args, **kwargs):
        # Throttle before authenticating so that wrong tokens are counted too.
        self.check_throttles(request)
        super().initial(request, *args, **kwargs)

    def get(self, request):
        client = request.user
        return Response({"valid": True, "client_id": str(client.pk), "name": client.name, "email": client.email})
