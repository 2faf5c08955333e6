"""The customers' dashboard (docs/API.md §2). Views only translate: parse, call a selector or a service,
render with an output serializer (clients/api/serializers.py), answer 200 JSON. Everything is scoped to
the caller's client: another client's ids are 404."""
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.selectors import agent_config, decisions_for_client
from agents.services.agent_settings import SETTING_FIELDS, agent_enabled_toggle, agent_settings_update
from clients import selectors
from clients.api import serializers as s
from clients.services import client_dry_run_get, client_dry_run_set
from agents.api.base import AgentApi
from spotbackend.api import BODY_ERRORS, answers, parse, render


class ValidateApi(APIView):
    """The installers and the dashboard check a token (API.md §2, §3)."""

    # Token guessing is slowed by the failed-token throttle of every route (spotbackend/throttling.py).
    @extend_schema(responses=answers(s.ValidateOutput))
    def get(self, request):
        return Response(render(s.ValidateOutput, request.user))


# Base for /api/client/{client_id}/...: only the caller's own client id, else 404 (a comment: the
# schema would show a docstring on every operation).
class ClientApi(APIView):

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

    @extend_schema(request=None, responses=answers(s.ToggleEnabledOutput, 404))
    def post(self, request, agent_id):
        agent = agent_enabled_toggle(agent=self.get_agent(agent_id))
        return Response(render(s.ToggleEnabledOutput, agent))


class AgentSettingsApi(AgentApi):
    """Change an agent's settings, or the client's dry run (API.md §2)."""

    @extend_schema(request=s.SettingsInput, responses=answers(s.AgentSettingsOutput, 404, *BODY_ERRORS))
    def post(self, request, agent_id):
        agent = self.get_agent(agent_id)
        changes = dict(parse(s.SettingsInput, request))
        if not changes:
            raise ValidationError(
                {"detail": f"No settings given; expected any of {', '.join(SETTING_FIELDS)}, dry_run."})
        client = request.user
        if "dry_run" in changes:
            client = client_dry_run_set(client=client, dry_run=changes.pop("dry_run"))
        if changes:
            agent = agent_settings_update(agent=agent, changes=changes)
        dry_run = client.dry_run if client is not request.user else client_dry_run_get(client=client)
        return Response(render(s.AgentSettingsOutput, {"settings": {**agent_config(agent=agent), "dry_run": dry_run}}))
