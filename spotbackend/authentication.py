"""`Authorization: Bearer <client token>`: the caller is a client (DRF's TokenAuthentication wants `Token`)."""
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from clients.services import client_get_by_token
from spotbackend import logs


class ClientTokenAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header: expected 'Bearer <token>'.")
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.")
        client = client_get_by_token(token=token)
        if client is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not client.is_active:
            raise exceptions.PermissionDenied("Client is inactive.")
        logs.bind_client(client)  # the client id on this call's log records
        return client, token

    def authenticate_header(self, request):
        # Present so that DRF answers 401 (not 403) when the token is missing or wrong.
        return 'Bearer realm="api"'


class IsClient(BasePermission):
    def has_permission(self, request, view):
        return request.user is not None and getattr(request.user, "is_authenticated", False)
