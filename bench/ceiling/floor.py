"""The floor: the ceiling plus only what the issue's rules require of an agent's call, done as cheaply as
DRF allows (bench only; docs/PERFORMANCE.md, "The floor"). It answers the question the targets raise: how
close to the empty view can *any* server on DRF get that keeps those rules?

- every call: a Bearer token checked against a per-process dict (the server's 2 s token cache, hit);
- pending-commands and config: one read of Django's cache (Redis): the one read that makes a command or a
  setting written on another host visible to the next call;
- heartbeat and pricing report: the body parsed, nothing validated, nothing written (less than any server
  can do: the server validates both and writes a report before answering);
- with FLOOR_OPS=1, the server's own request-id and metrics middleware in front (the operators' issue).
"""
import hashlib

from django.core.cache import cache
from django.urls import path, re_path
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.response import Response
from rest_framework.views import APIView

from ceiling.views import CeilingApi

TOKENS: dict[str, str] = {}  # token hash -> client: the bench's one client, taken at first sight


class TokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed()
        return TOKENS.setdefault(hashlib.sha256(token.strip().encode()).hexdigest(), "bench-client"), None


class AgentApi(APIView):
    authentication_classes = [TokenAuthentication]

    def get(self, request, agent_id):
        cache.get(f"agent:{agent_id}:{request.path.rsplit('/', 1)[1]}")
        return Response({"success": True})

    def post(self, request, agent_id):
        request.data  # noqa: B018
        return Response({"success": True})


urlpatterns = [
    path("api/agents/<str:agent_id>/heartbeat", AgentApi.as_view()),
    path("api/agents/<str:agent_id>/config", AgentApi.as_view()),
    path("api/agents/<str:agent_id>/pending-commands", AgentApi.as_view()),
    path("api/agents/<str:agent_id>/pricing-report", AgentApi.as_view()),
    re_path(r"", CeilingApi.as_view()),
]
