"""The customers' dashboard (docs/API.md §2). Views only translate: parse, call a selector or a service,
answer 200 JSON. Everything is scoped to the caller's client: another client's ids are 404."""
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.api.views import AgentApi, parse
from agents.selectors import agent_config, decisions_for_client
from agents.services.agent_settings import REPLICA_COUNT_MAX, SETTING_FIELDS, agent_enabled_toggle, agent_settings_update
from clients import selectors
from clients.services import client_dry_run_get, client_dry_run_set
from spotbackend.fields import StrictBooleanField


class ValidateApi(APIView):
    # Token guessing is slowed by the failed-token throttle of every route (spotbackend/throttling.py).
    def get(self, request):
        client = request.user
        return Response({"valid": True, "client_id": str(client.pk), "name": client.name, "email": client.email})


class ClientApi(APIView):
    """Base for /api/client/{client_id}/...: only the caller's own client id, else 404."""

    def get_client(self, client_id):
        return selectors.client_get_for_caller(caller=self.request.user, client_id=client_id)


class ClientStatsApi(ClientApi):
    def get(self, request, client_id):
        return Response(selectors.client_stats(client=self.get_client(client_id)))


class ClientAgentsApi(ClientApi):
    def get(self, request, client_id):
        return Response(selectors.client_agents(client=self.get_client(client_id)))


class ClientInstancesApi(ClientApi):
    def get(self, request, client_id):
        return Response(selectors.client_instances(client=self.get_client(client_id)))


class InstancePricingApi(APIView):
    def get(self, request, instance_id):
        return Response(selectors.instance_pricing(client=request.user, instance_id=instance_id))


class SwitchesQuery(serializers.Serializer):
    limit = serializers.IntegerField(
        required=False, default=selectors.SWITCHES_LIMIT_DEFAULT, min_value=1, max_value=selectors.SWITCHES_LIMIT_MAX
    )
    offset = serializers.IntegerField(required=False, default=0, min_value=0)


class ClientSwitchesApi(ClientApi):
    def get(self, request, client_id):
        client = self.get_client(client_id)
        query = SwitchesQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(selectors.client_switches(client=client, **query.validated_data))


class ClientDecisionsApi(ClientApi):
    """The client's automatic decisions and their reasons (issue 9, item 8), newest first; paged like switches."""

    def get(self, request, client_id):
        client = self.get_client(client_id)
        query = SwitchesQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(decisions_for_client(client=client, **query.validated_data))


class ClientReplicasApi(ClientApi):
    def get(self, request, client_id):
        return Response(selectors.client_replicas(client=self.get_client(client_id)))


class ToggleEnabledApi(AgentApi):
    """No body: flips `enabled`; the agent picks it up from its config."""

    def post(self, request, agent_id):
        agent = agent_enabled_toggle(agent=self.get_agent(agent_id))
        return Response({"success": True, "enabled": agent.enabled})


class SettingsInput(serializers.Serializer):
    auto_switch_enabled = StrictBooleanField(required=False)
    auto_terminate_enabled = StrictBooleanField(required=False)
    manual_replica_enabled = StrictBooleanField(required=False)
    # The dashboard may send "2": IntegerField coerces numeric strings and refuses anything else.
    replica_count = serializers.IntegerField(required=False, min_value=0, max_value=REPLICA_COUNT_MAX)
    # A client-wide setting (issue 9): decide and record, tell the agents nothing.
    dry_run = StrictBooleanField(required=False)


class AgentSettingsApi(AgentApi):
    def post(self, request, agent_id):
        agent = self.get_agent(agent_id)
        changes = dict(parse(SettingsInput, request))
        if not changes:
            raise ValidationError(
                {"detail": f"No settings given; expected any of {', '.join(SETTING_FIELDS)}, dry_run."})
        client = request.user
        if "dry_run" in changes:
            client = client_dry_run_set(client=client, dry_run=changes.pop("dry_run"))
        if changes:
            agent = agent_settings_update(agent=agent, changes=changes)
        config = agent_config(agent=agent)
        values = {f: config[f] for f in ("enabled", *SETTING_FIELDS)}
        dry_run = client.dry_run if client is not request.user else client_dry_run_get(client=client)
        return Response({"success": True, "settings": {**values, "dry_run": dry_run}})
