"""Agent actions the customers' dashboard calls under /api/agents/ (docs/API.md §2)."""
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from agents.api.outputs import IssueSwitchCommandOutput
from agents.models import MANUAL_PRIORITY
from agents.services.commands import command_issue
from agents.api.base import AgentApi
from clients.audit import audit_request
from spotbackend.api import BODY_ERRORS, answers, parse, render
from clients.authentication import DashboardScope
from spotbackend.fields import StrictCharField


class IssueSwitchCommandInput(serializers.Serializer):
    target_mode = serializers.ChoiceField(choices=["spot", "ondemand"])
    # The dashboard always sends "": command_issue then picks the best pool for a spot target.
    target_pool_id = StrictCharField(required=False, allow_blank=True, allow_null=True, max_length=100,
                                     trim_whitespace=False)


class IssueSwitchCommandApi(AgentApi):
    """The dashboard queues a manual switch (API.md §2); 409 while one is in flight. Dashboard tokens only."""

    permission_classes = [DashboardScope]

    @extend_schema(request=IssueSwitchCommandInput, responses=answers(IssueSwitchCommandOutput, 404, 409, *BODY_ERRORS))
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
        audit_request(request, action="agent.switch_command", target=agent.pk,
                      details={"command_id": str(command.pk), "target_mode": data["target_mode"]})
        return Response(render(IssueSwitchCommandOutput, command))
