"""`Authorization: Bearer <client token>`: the caller is a client (DRF's TokenAuthentication wants `Token`).

`request.user` is the client, `request.auth` the token's grant (clients/services.py `TokenGrant`: scope,
token id and name). An unknown, revoked or expired token is a 401 on every route; an `agent`-scoped
token is refused (403) by `DashboardScope` on the dashboard's client API (docs/SECURITY.md)."""
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from clients.services import token_authenticate
from spotbackend import logs
from spotbackend.throttling import TokenFailureThrottle


class ClientTokenAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        """Failed attempts are counted per address (spotbackend/throttling.py): past TOKEN_FAILURE_RATE
        they answer 429."""
        try:
            return self._authenticate(request)
        except exceptions.AuthenticationFailed:
            wait = TokenFailureThrottle().record_failure(request)
            if wait is not None:
                raise exceptions.Throttled(wait, detail="Too many failed token attempts from this address.")
            raise

    def _authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header: expected 'Bearer <token>'.")
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.")
        grant = token_authenticate(token=token)
        if grant is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not grant.client.is_active:
            raise exceptions.PermissionDenied("Client is inactive.")
        logs.bind_client(grant.client)  # the client id on this call's log records
        return grant.client, grant

    def authenticate_header(self, request):
        # Present so that DRF answers 401 (not 403) when the token is missing or wrong.
        return 'Bearer realm="api"'


class IsClient(BasePermission):
    def has_permission(self, request, view):
        return request.user is not None and getattr(request.user, "is_authenticated", False)


class DashboardScope(IsClient):
    """The dashboard's client API: a token with the `dashboard` scope (or the client's original token);
    an `agent` token is a 403."""

    message = "This token has the 'agent' scope: it works on the agents' routes only, not on the client API."

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        return bool(getattr(request.auth, "is_dashboard", False))
