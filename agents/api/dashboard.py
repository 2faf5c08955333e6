"""Agent actions the customers' dashboard calls under /api/agents/ (docs/API.md §2)."""
from rest_framework import serializers
from rest_framework.response import Response

from agents.api.views import AgentApi, parse
from agents.models import MANUAL_PRIORITY
from agents.services.commands import command_issue
from spotbackend.fields import StrictCharField


class IssueSwitchCommandInput(serializers.Serializer):
    target_mode = serializers.ChoiceField(choices=["spot", "ondemand"])
    # The dashboard always sends "": command_issue then picks the best pool for a spot target.
    target_pool_id = StrictCharField(required=False, allow_blank=True, allow_null=True, max_length=100,
                                     trim_whitespace=False)


class IssueSwitchCommandApi(AgentApi):
    def post(self, request, agent_id):
        agent = self.get_agent(agent_id)
        data = parse(IssueSwitchCommandInput, request)
        command = command_issue(
            agent=agent,
            target_mode=data["target_mode"],
            target_pool_id=data.get("target_pool_id") or "",
            priority=MANUAL_PRIORITY,  # >= 50: the agent labels the switch "manual"
            source="dashboard",
            reason="issued from the dashboard",
        )
        return Response(
            {
                "success": True,
                "command_id": str(command.pk),
                "target_mode": command.target_mode,
                "target_pool_id": command.target_pool_id or "",
                "priority": command.priority,
            }
        )
