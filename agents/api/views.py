"""The agent's normal life (docs/API.md §1.1-1.7). Views only translate: parse, call a service, render."""
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.api import outputs as o
from agents.api import serializers as s
from agents.api.base import AgentApi
from agents.models import Command
from agents.selectors import agent_config, agent_config_for_client, agent_with_status
from agents.services.commands import command_mark_executed, commands_poll
from agents.services.pricing import PoolQuote, PricingReport, pricing_is_fallback, pricing_report_record
from agents.services.heartbeats import HeartbeatPayload, agent_heartbeat_record
from agents.services.registration import RegisterPayload, agent_register
from agents.services.switches import SwitchReport, SwitchSide, switch_report_record
from spotbackend.api import BODY_ERRORS, answers, clean, parse, parse_uuid, render
from spotbackend.exceptions import NotFoundError


class RegisterApi(APIView):
    """The agent registers at start (API.md §1.1): same logical id, same agent; the server decides the primary."""

    @extend_schema(request=s.RegisterInput, responses=answers(o.RegisterOutput, *BODY_ERRORS))
    def post(self, request):
        data = parse(s.RegisterInput, request)
        payload = RegisterPayload(
            **clean(
                data,
                "instance_id",
                "logical_agent_id",
                "hostname",
                "instance_type",
                "region",
                "az",
                "ami_id",
                "agent_version",
                "mode",
                "private_ip",
                "public_ip",
            )
        )
        agent, created = agent_register(client=request.user, payload=payload)
        return Response(render(o.RegisterOutput, {
            "agent_id": agent.pk,
            "client_id": agent.client_id,
            "created": created,
            "is_primary": agent.instance_id == payload.instance_id,
            "config": agent_config(agent=agent),
        }))


class HeartbeatApi(AgentApi):
    """Every 30 s (API.md §1.2); a missing or 'unknown' field never overwrites a stored one."""

    @extend_schema(request=s.HeartbeatInput, responses=answers(o.HeartbeatOutput, 404, *BODY_ERRORS))
    def post(self, request, agent_id):
        data = parse(s.HeartbeatInput, request)
        payload = HeartbeatPayload(**clean(data, "status", "instance_id", "instance_type", "mode", "az"))
        outcome = agent_heartbeat_record(client=request.user, agent_id=agent_id, payload=payload)
        return Response(render(o.HeartbeatOutput, {"recorded_as": outcome}))


class ConfigApi(AgentApi):
    """Polled every 60 s (API.md §1.3); `enabled` is always present."""

    @extend_schema(responses=answers(o.AgentConfigSerializer, 404))
    def get(self, request, agent_id):
        return Response(render(o.AgentConfigSerializer, agent_config_for_client(client=request.user, agent_id=agent_id)))


class PendingCommandsApi(AgentApi):
    """Polled every 15 s (API.md §1.4); a command is handed out once, to one instance."""

    @extend_schema(
        parameters=[OpenApiParameter("instance_id", str, description="The polling instance (the command is bound to it).")],
        responses=answers(o.PendingCommandsOutput, 404),
    )
    def get(self, request, agent_id):
        commands = commands_poll(client=request.user, agent_id=agent_id, instance_id=request.GET.get("instance_id", ""))
        return Response(render(o.PendingCommandsOutput, {"commands": commands}))


def _command_pk(command_id):
    pk = parse_uuid(command_id)
    # Exactly the id the agent was given (lowercase, hyphenated): no other spelling names a command.
    if pk is None or str(pk) != command_id:
        raise NotFoundError("Command not found.")
    return pk


def _mark_executed(agent, command_id, success: bool, message: str) -> Response:
    try:
        command = command_mark_executed(agent=agent, command_id=_command_pk(command_id), success=success, message=message)
    except Command.DoesNotExist:
        raise NotFoundError("Command not found.")
    return Response(render(o.CommandExecutedOutput, command))


class CommandExecutedApi(AgentApi):
    """The agent's outcome of a command (API.md §1.5)."""

    @extend_schema(request=s.ExecutedInput, responses=answers(o.CommandExecutedOutput, 404, *BODY_ERRORS))
    def post(self, request, agent_id, command_id):
        agent = self.get_agent(agent_id)
        data = parse(s.ExecutedInput, request)
        return _mark_executed(agent, command_id, data["success"], data.get("message") or "")


class MarkCommandExecutedApi(AgentApi):
    """v3.2.0's spelling of the executed callback: the command id in the body, no success flag."""

    @extend_schema(request=s.MarkExecutedInput, responses=answers(o.CommandExecutedOutput, 404, *BODY_ERRORS))
    def post(self, request, agent_id):
        agent = self.get_agent(agent_id)
        data = parse(s.MarkExecutedInput, request)
        return _mark_executed(agent, data["command_id"], data["success"], data.get("message") or "")


class PricingReportApi(AgentApi):
    """Market prices seen by the agent, v4 and v3.2.0 shapes (API.md §1.7)."""

    @extend_schema(request=s.PricingReportInput, responses=answers(o.PricingReportOutput, 404, *BODY_ERRORS))
    def post(self, request, agent_id):
        agent = self.get_agent(agent_id)
        return Response(pricing_answer(agent=agent, data=parse(s.PricingReportInput, request)))


def pricing_answer(*, agent, data: dict) -> dict:
    inst = data["instance"]
    v3 = "pricing" not in data
    if v3:
        pools = data.get("spot_pools") or []
        on_demand = (data.get("on_demand_price") or {}).get("price")
        mode = inst.get("current_mode") or inst.get("mode") or ""
        pool_id = inst.get("current_pool_id") or inst.get("pool_id") or ""
        collected_at = data.get("collected_at")
    else:
        pricing = data["pricing"]
        pools = pricing.get("spot_pools") or []
        on_demand = pricing.get("on_demand_price")
        mode = inst.get("mode") or inst.get("current_mode") or ""
        pool_id = inst.get("pool_id") or ""
        collected_at = pricing.get("collected_at")
    quotes = [
        PoolQuote(pool_id=p["pool_id"], instance_type=p.get("instance_type") or "", az=p.get("az") or "", price=p["price"])
        for p in pools
    ]
    report = PricingReport(
        instance_id=inst.get("instance_id") or "",
        instance_type=inst.get("instance_type") or "",
        region=inst.get("region") or "",
        az=inst.get("az") or "",
        mode=mode,
        pool_id=pool_id,
        on_demand_price=on_demand,
        on_demand_is_fallback=pricing_is_fallback(on_demand=on_demand, spot_prices=[q.price for q in quotes], v3=v3),
        spot_pools=quotes,
        collected_at=collected_at,
    )
    return render(o.PricingReportOutput, pricing_report_record(agent=agent, report=report))


def _side(data: dict) -> SwitchSide:
    return SwitchSide(**clean(data, "instance_id", "instance_type", "region", "az", "ami_id", "mode", "pool_id"))


class SwitchReportApi(AgentApi):
    """A switch the agent carried out (API.md §1.6)."""

    @extend_schema(request=s.SwitchReportInput, responses=answers(o.SwitchReportOutput, 404, *BODY_ERRORS))
    def post(self, request, agent_id):
        agent = self.get_agent(agent_id)
        data = parse(s.SwitchReportInput, request)
        prices = data.get("prices") or {}
        timing = data.get("timing") or {}
        report = SwitchReport(
            old=_side(data["old_instance"]),
            new=_side(data["new_instance"]),
            on_demand_price=prices.get("on_demand"),
            old_spot_price=prices.get("old_spot"),
            new_spot_price=prices.get("new_spot"),
            trigger=data.get("trigger") or "manual",
            initiated_at=timing.get("switch_initiated_at"),
            completed_at=timing.get("traffic_switched_at") or timing.get("new_instance_ready_at"),
            old_terminated=bool(timing.get("old_instance_terminated_at")),
            raw=request.data,
        )
        switch = switch_report_record(agent=agent, report=report)
        return Response(render(o.SwitchReportOutput, switch))


class AgentDetailApi(AgentApi):
    """One agent as the dashboard shows it (API.md §2)."""

    @extend_schema(responses=answers(o.AgentSummarySerializer, 404))
    def get(self, request, agent_id):
        return Response(render(o.AgentSummarySerializer, agent_with_status(self.get_agent(agent_id))))
