"""Replica endpoints (docs/API.md §1.11, §1.12, §2). Dashboard-called ones answer 200, never 201/204."""
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from agents.api.outputs import (
    EmergencyReplicaOutput,
    PromoteOutput,
    ReplicaConfigOutput,
    ReplicaCreateOutput,
    ReplicaSerializer,
    ReplicaStatusOutput,
)
from agents.api.serializers import _opt_id
from agents.models import ReplicaStatus, ReplicaType
from agents.selectors import replica_config
from agents.services.replicas import (
    replica_create,
    replica_get_for_agent,
    replica_promote_request,
    replica_status_update,
    replica_terminate,
)
from agents.api.base import AgentApi
from clients.audit import audit_request
from spotbackend.api import BODY_ERRORS, SuccessMessageSerializer, answers, parse, render
from spotbackend.fields import StrictCharField


NEW_REPLICA_STATUSES = [ReplicaStatus.LAUNCHING, ReplicaStatus.SYNCING, ReplicaStatus.READY]


def _opt_str(**kwargs):
    return StrictCharField(required=False, allow_null=True, allow_blank=True, **kwargs)


class ReplicaInput(serializers.Serializer):
    """Both bodies of POST .../replicas: the agent's emergency replica and the dashboard's manual one."""

    instance_id = _opt_id(max_length=64)
    replica_type = serializers.ChoiceField(choices=ReplicaType.choices, required=False, allow_null=True)
    parent_instance_id = _opt_id(max_length=64)
    pool_id = _opt_id(max_length=100)
    target_pool_id = _opt_id(max_length=100)
    status = serializers.ChoiceField(choices=NEW_REPLICA_STATUSES, required=False, allow_null=True)


def _create(agent, data: dict, default_type: str):
    instance_id = data.get("instance_id") or ""
    replica_type = data.get("replica_type") or (ReplicaType.EMERGENCY if instance_id else default_type)
    return replica_create(
        agent=agent,
        replica_type=replica_type,
        instance_id=instance_id,
        parent_instance_id=data.get("parent_instance_id") or "",
        pool_id=data.get("pool_id") or data.get("target_pool_id") or "",
        status=data.get("status") or ReplicaStatus.LAUNCHING,
    )


class ReplicasApi(AgentApi):
    """The agent's emergency replica or the dashboard's manual one (API.md §1.11)."""

    @extend_schema(request=ReplicaInput, responses=answers(ReplicaCreateOutput, 404, 409, *BODY_ERRORS))
    def post(self, request, agent_id):
        agent = self.get_agent(agent_id)
        data = parse(ReplicaInput, request)
        replica, created = _create(agent, data, default_type=ReplicaType.MANUAL)
        if created:
            audit_request(request, action="replica.create", target=replica.pk,
                          details={"agent_id": str(agent.pk), "replica_type": replica.replica_type})
        return Response(render(ReplicaCreateOutput, {"replica": replica, "created": created}))


class CreateEmergencyReplicaApi(AgentApi):
    """As POST .../replicas, an emergency replica by default (API.md §1.12)."""

    @extend_schema(request=ReplicaInput, responses=answers(EmergencyReplicaOutput, 404, 409, *BODY_ERRORS))
    def post(self, request, agent_id):
        agent = self.get_agent(agent_id)
        data = parse(ReplicaInput, request)
        replica, created = _create(agent, data, default_type=ReplicaType.EMERGENCY)
        if created:
            audit_request(request, action="replica.create", target=replica.pk,
                          details={"agent_id": str(agent.pk), "replica_type": replica.replica_type})
        return Response(render(EmergencyReplicaOutput, {"replica": replica, "created": created}))


class ReplicaDetailApi(AgentApi):
    """One replica; DELETE terminates it and answers 200 (API.md §1.12, §2)."""

    @extend_schema(responses=answers(ReplicaSerializer, 404))
    def get(self, request, agent_id, replica_id):
        agent = self.get_agent(agent_id)
        return Response(render(ReplicaSerializer, replica_get_for_agent(agent=agent, replica_id=replica_id)))

    # The dashboard takes only 200 as success (API.md §0): never 204.
    @extend_schema(responses=answers(SuccessMessageSerializer, 404, 409))
    def delete(self, request, agent_id, replica_id):
        agent = self.get_agent(agent_id)
        replica = replica_terminate(agent=agent, replica_id=replica_id)
        audit_request(request, action="replica.delete", target=replica.pk, details={"agent_id": str(agent.pk)})
        return Response(render(SuccessMessageSerializer, {"message": "Replica terminated"}))


class ReplicaPromoteApi(AgentApi):
    """Promote a replica now, or queue the switch that will (API.md §1.12)."""

    @extend_schema(request=None, responses=answers(PromoteOutput, 404, 409))
    def post(self, request, agent_id, replica_id):
        agent = self.get_agent(agent_id)
        outcome = replica_promote_request(agent=agent, replica_id=replica_id)
        audit_request(request, action="replica.promote", target=replica_id, details={"agent_id": str(agent.pk)})
        return Response(render(PromoteOutput, outcome))


class ReplicaStatusApi(AgentApi):
    """A replica's new status; an illegal move is 409 (API.md §1.12)."""

    class ReplicaStatusInput(serializers.Serializer):
        status = serializers.ChoiceField(choices=ReplicaStatus.choices)
        instance_id = _opt_id(max_length=64)
        reason = _opt_str(max_length=2000)
        message = _opt_str(max_length=2000)

    @extend_schema(request=ReplicaStatusInput, responses=answers(ReplicaStatusOutput, 404, 409, *BODY_ERRORS))
    def post(self, request, agent_id, replica_id):
        agent = self.get_agent(agent_id)
        data = parse(self.ReplicaStatusInput, request)
        replica = replica_status_update(
            agent=agent,
            replica_id=replica_id,
            status=data["status"],
            instance_id=data.get("instance_id") or "",
            reason=data.get("reason") or data.get("message") or "",
        )
        return Response(render(ReplicaStatusOutput, replica))


class ReplicaConfigApi(AgentApi):
    """What a newer agent reads to manage its replicas (API.md §1.12)."""

    @extend_schema(responses=answers(ReplicaConfigOutput, 404))
    def get(self, request, agent_id):
        return Response(render(ReplicaConfigOutput, replica_config(agent=self.get_agent(agent_id))))
