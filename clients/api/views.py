"""The customers' dashboard (docs/API.md §2). Views only translate: parse, call a selector or a service,
render with an output serializer (clients/api/serializers.py), answer 200 JSON. Everything is scoped to
the caller's client: another client's ids are 404."""
from datetime import timedelta

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.selectors import agent_config, decisions_for_client
from agents.services.agent_settings import SETTING_FIELDS, agent_enabled_toggle, agent_settings_update
from clients import selectors
from clients.api import serializers as s
from agents.api.base import AgentApi
from clients.audit import audit_request
from clients.services import (
    client_dry_run_get,
    client_dry_run_set,
    client_token_create,
    client_token_revoke,
    client_token_rotate_named,
)
from spotbackend.api import BODY_ERRORS, answers, parse, render
from clients.authentication import DashboardScope


class ValidateApi(APIView):
    """The installers and the dashboard check a token (API.md §2, §3)."""

    # Token guessing is slowed by the failed-token throttle of every route (spotbackend/throttling.py).
    @extend_schema(responses=answers(s.ValidateOutput))
    def get(self, request):
        return Response(render(s.ValidateOutput, request.user))


# Base for /api/client/{client_id}/...: only the caller's own client id, else 404, and only with a
# dashboard token (an agent token is a 403). A comment: the schema would show a docstring on every operation.
class ClientApi(APIView):
    permission_classes = [DashboardScope]

    def get_client(self, client_id):
        return selectors.client_get_for_caller(caller=self.request.user, client_id=client_id)


class ClientStatsApi(ClientApi):
    """The dashboard's stats card (API.md §2)."""

    @extend_schema(responses=answers(s.ClientStatsOutput, 404))
    def get(self, request, client_id):
        return Response(render(s.ClientStatsOutput, selectors.client_stats(client=self.get_client(client_id))))


class ClientAgentsApi(ClientApi):
    """The client's agents (API.md §2)."""

    @extend_schema(responses=answers(s.AgentListOutput, 404))
    def get(self, request, client_id):
        return Response(render(s.AgentListOutput, selectors.client_agents(client=self.get_client(client_id))))


class ClientInstancesApi(ClientApi):
    """Running instances and those ended within 7 days (API.md §2)."""

    @extend_schema(responses=answers(s.InstanceListOutput, 404))
    def get(self, request, client_id):
        return Response(render(s.InstanceListOutput, selectors.client_instances(client=self.get_client(client_id))))


class InstancePricingApi(APIView):
    """The pools an instance could run in, with prices and risk (API.md §2)."""

    permission_classes = [DashboardScope]

    @extend_schema(responses=answers(s.InstancePricingOutput, 404))
    def get(self, request, instance_id):
        pricing = selectors.instance_pricing(client=request.user, instance_id=instance_id)
        return Response(render(s.InstancePricingOutput, pricing))


def _page(request) -> dict:
    query = s.PageQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data


class ClientSwitchesApi(ClientApi):
    """The switch history, newest first, paged (API.md §2)."""

    @extend_schema(parameters=[s.PageQuery], responses=answers(s.SwitchPageOutput, 400, 404))
    def get(self, request, client_id):
        client = self.get_client(client_id)
        return Response(render(s.SwitchPageOutput, selectors.client_switches(client=client, **_page(request))))


class ClientDecisionsApi(ClientApi):
    """The client's automatic decisions and their reasons (issue 9, item 8), newest first; paged like switches."""

    @extend_schema(parameters=[s.PageQuery], responses=answers(s.DecisionPageOutput, 400, 404))
    def get(self, request, client_id):
        client = self.get_client(client_id)
        return Response(render(s.DecisionPageOutput, decisions_for_client(client=client, **_page(request))))


class ClientReplicasApi(ClientApi):
    """Live replicas and those ended within 7 days (API.md §2)."""

    @extend_schema(responses=answers(s.ReplicaListOutput, 404))
    def get(self, request, client_id):
        return Response(render(s.ReplicaListOutput, selectors.client_replicas(client=self.get_client(client_id))))


class ToggleEnabledApi(AgentApi):
    """No body: flips `enabled`; the agent picks it up from its config."""

    permission_classes = [DashboardScope]

    @extend_schema(request=None, responses=answers(s.ToggleEnabledOutput, 404))
    def post(self, request, agent_id):
        agent = agent_enabled_toggle(agent=self.get_agent(agent_id))
        audit_request(request, action="agent.toggle_enabled", target=agent.pk, details={"enabled": agent.enabled})
        return Response(render(s.ToggleEnabledOutput, agent))


class AgentSettingsApi(AgentApi):
    """Change an agent's settings, or the client's dry run (API.md §2)."""

    permission_classes = [DashboardScope]

    @extend_schema(request=s.SettingsInput, responses=answers(s.AgentSettingsOutput, 404, *BODY_ERRORS))
    def post(self, request, agent_id):
        agent = self.get_agent(agent_id)
        changes = dict(parse(s.SettingsInput, request))
        asked = dict(changes)
        if not changes:
            raise ValidationError(
                {"detail": f"No settings given; expected any of {', '.join(SETTING_FIELDS)}, dry_run."})
        client = request.user
        if "dry_run" in changes:
            client = client_dry_run_set(client=client, dry_run=changes.pop("dry_run"))
        if changes:
            agent = agent_settings_update(agent=agent, changes=changes)
        dry_run = client.dry_run if client is not request.user else client_dry_run_get(client=client)
        audit_request(request, action="agent.settings", target=agent.pk, details=asked)
        return Response(render(s.AgentSettingsOutput, {"settings": {**agent_config(agent=agent), "dry_run": dry_run}}))


# --- Named tokens, audit trail, system events (issue 20) ---------------------------------------------


class ClientTokensApi(ClientApi):
    """The client's named tokens (`agent` or `dashboard` scope); creating one shows it this once."""

    @extend_schema(responses=answers(s.TokenListOutput, 404))
    def get(self, request, client_id):
        return Response(render(s.TokenListOutput, selectors.client_tokens(client=self.get_client(client_id))))

    @extend_schema(request=s.TokenCreateInput, responses=answers(s.TokenCreatedOutput, 404, *BODY_ERRORS, status=201))
    def post(self, request, client_id):
        client = self.get_client(client_id)
        data = parse(s.TokenCreateInput, request)
        row, plain = client_token_create(client=client, name=data["name"], scope=data["scope"],
                                         expires_at=data.get("expires_at"))
        audit_request(request, action="token.create", target=row.pk, details={"name": row.name, "scope": row.scope})
        row.plain = plain
        return Response(render(s.TokenCreatedOutput, row), status=201)


class ClientTokenApi(ClientApi):
    """Revoke a token: refused on every route within seconds (docs/SECURITY.md)."""

    @extend_schema(request=None, responses=answers(s.DeletedOutput, 404))
    def delete(self, request, client_id, token_id):
        token = selectors.client_token_get(client=self.get_client(client_id), token_id=token_id)
        client_token_revoke(token=token)
        audit_request(request, action="token.revoke", target=token.pk, details={"name": token.name})
        return Response(render(s.DeletedOutput, {"message": "Token revoked"}))


class ClientTokenRotateApi(ClientApi):
    """One call: a new token like this one; this one keeps working for `overlap_seconds` (default a day)."""

    @extend_schema(request=s.TokenRotateInput, responses=answers(s.TokenRotatedOutput, 404, *BODY_ERRORS, status=201))
    def post(self, request, client_id, token_id):
        token = selectors.client_token_get(client=self.get_client(client_id), token_id=token_id)
        if token.revoked_at is not None:
            raise ValidationError({"detail": "This token is revoked; create a new one."})
        data = parse(s.TokenRotateInput, request) if request.data else {"overlap_seconds": 86400}
        new, plain = client_token_rotate_named(token=token, overlap=timedelta(seconds=data["overlap_seconds"]))
        token.refresh_from_db()
        new.plain = plain
        audit_request(request, action="token.rotate", target=token.pk,
                      details={"name": token.name, "new_token_id": str(new.pk)})
        return Response(render(s.TokenRotatedOutput, {"new": new, "previous": token}), status=201)


class ClientAuditApi(ClientApi):
    """Changes made with dashboard tokens, newest first, paged (`limit`, `offset`)."""

    @extend_schema(parameters=[s.PageQuery], responses=answers(s.AuditPageOutput, 400, 404))
    def get(self, request, client_id):
        client = self.get_client(client_id)
        return Response(render(s.AuditPageOutput, selectors.client_audit(client=client, **_page(request))))


class ClientEventsApi(ClientApi):
    """The client's system events (e.g. a webhook endpoint disabled), newest first, paged."""

    @extend_schema(parameters=[s.PageQuery], responses=answers(s.SystemEventPageOutput, 400, 404))
    def get(self, request, client_id):
        client = self.get_client(client_id)
        return Response(render(s.SystemEventPageOutput, selectors.client_events(client=client, **_page(request))))
