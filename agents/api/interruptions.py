"""Termination notices and rebalance recommendations (docs/API.md §1.8, §1.9). Views only translate."""
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from agents.api.outputs import RebalanceDecisionOutput, TerminationDecisionOutput
from agents.api.serializers import _opt_id
from agents.selectors import agent_owned_values
from agents.services.rebalance import rebalance_recommendation_handle
from agents.services.termination import Notice, termination_notice_handle
from agents.api.base import AgentApi
from spotbackend.api import BODY_ERRORS, answers, parse, render
from spotbackend.fields import StrictCharField


def _opt_str(**kwargs):
    return StrictCharField(required=False, allow_null=True, allow_blank=True, **kwargs)


def _opt_time():
    return serializers.DateTimeField(required=False, allow_null=True)


class TerminationImminentApi(AgentApi):
    """A spot termination notice, posted every 5 s while shown (API.md §1.8); repeats get the same decision."""

    class TerminationNoticeInput(serializers.Serializer):
        instance_id = _opt_id(max_length=64)
        termination_time = _opt_time()  # what the v4 agent sends
        time = _opt_time()  # the request document's spelling
        action = _opt_str(max_length=32)
        detected_at = _opt_time()

    @extend_schema(request=TerminationNoticeInput, responses=answers(TerminationDecisionOutput, 404, *BODY_ERRORS))
    def post(self, request, agent_id):
        # The owner check reads one column: the service locks the row only when it decides.
        agent_pk = agent_owned_values(client=request.user, agent_id=agent_id, fields=())["id"]
        data = parse(self.TerminationNoticeInput, request)
        notice = Notice(
            instance_id=data.get("instance_id") or "",
            termination_time=data.get("termination_time") or data.get("time"),
            action=data.get("action") or "",
            detected_at=data.get("detected_at"),
        )
        return Response(render(TerminationDecisionOutput, termination_notice_handle(agent_id=agent_pk, notice=notice)))


class RebalanceRecommendationApi(AgentApi):
    """A rebalance recommendation, posted every 30 s while shown (API.md §1.9)."""

    class RebalanceRecommendationInput(serializers.Serializer):
        instance_id = _opt_id(max_length=64)
        detected_at = _opt_time()

    @extend_schema(request=RebalanceRecommendationInput, responses=answers(RebalanceDecisionOutput, 404, *BODY_ERRORS))
    def post(self, request, agent_id):
        agent = self.get_agent(agent_id)
        data = parse(self.RebalanceRecommendationInput, request)
        notice = Notice(instance_id=data.get("instance_id") or "", detected_at=data.get("detected_at"))
        decision = rebalance_recommendation_handle(agent=agent, notice=notice)
        return Response(render(RebalanceDecisionOutput, decision))
