"""drf-spectacular extensions: how the OpenAPI schema (/api/schema) describes this project's own
classes. Imported by spotbackend/urls.py, so they are registered before any schema is generated."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ClientTokenScheme(OpenApiAuthenticationExtension):
    """`Authorization: Bearer <client token>` (docs/API.md §0)."""

    target_class = "clients.authentication.ClientTokenAuthentication"
    match_subclasses = True
    name = "ClientToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A client token: the client's original token or a named one (scope `agent`: the "
            "agents' routes only; scope `dashboard`: those and the client API). A missing, unknown, revoked or "
            "expired token is 401, an inactive client or an agent token on the client API 403; too many failed "
            "attempts from one address answer 429.",
        }
