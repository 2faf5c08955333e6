"""Replica endpoints (docs/API.md §1.11, §1.12, §2). Dashboard-called ones answer 200, never 201/204."""
from rest_framework import serializers
from rest_framework.response import Response

from agents.api.serializers import _opt_id
from agents.api.views import AgentApi, parse
from agents.models import ReplicaStatus, ReplicaType
from agents.selectors import replica_config, replica_item
from agents.services.replicas import (
    replica_create,
    replica_get_for_agent,
    replica_promote_request,
    replica_status_update,
    replica_terminate,
)
from spotbackend.fields import StrictCharField


def _opt_str(**kwargs):
    return StrictCharField(required=False, allow_null=True, allow_blank=True, **kwargs)


class ReplicaInput(serializers.Serializer):
    """Both bodies of POST .../replicas: the agent's emergency replica and the dashboard's manual one."""

    instance_id = _opt_id(max_length=64)
    replica_type = serializers.ChoiceField(choices=ReplicaType.values, required=False, allow_null=True)
    parent_instance_id = _opt_id(max_length=64)
    pool_id = _opt_id(max_length=100)
    target_pool_id = _opt_id(max_length=100)
    status = serializers.ChoiceField(
        choices=[ReplicaStatus.LAUNCHING, ReplicaStatus.SYNCING, ReplicaStatus.READY], required=False, allow_null=True
    )


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
    def post(self, request, agent_id):
        agent = self.get_agent(agent_id)
        data = parse(ReplicaInput, request)
        replica, created = _create(agent, data, default_type=ReplicaType.MANUAL)
        return Response({"success": True, "replica_id": str(replica.pk), "created": created,
                         "replica": replica_item(replica)})


class CreateEmergencyReplicaApi(AgentApi):
    def post(self, request, agent_id):
        agent = self.get_agent(agent_id)
        data = parse(ReplicaInput, request)
        replica, created = _create(agent, data, default_type=ReplicaType.EMERGENCY)
        return Response({"success": True, "replica_id": str(replica.pk), "instance_id": replica.instance_id,
                         "created": created})


class ReplicaDetailApi(AgentApi):
    def get(self, request, agent_id, replica_id):
        agent = self.get_agent(agent_id)
        return Response(replica_item(replica_get_for_agent(agent=agent, replica_id=replica_id)))

    def delete(self, request, agent_id, replica_id):
        agent = self.get_agent(agent_id)
        replica_terminate(agent=agent, replica_id=replica_id)
        return Response({"success": True, "message": "Replica terminated"})


class ReplicaPromoteApi(AgentApi):
    def post(self, request, agent_id, replica_id):
        agent = self.get_agent(agent_id)
        return Response(replica_promote_request(agent=agent, replica_id=replica_id).as_response())


class ReplicaStatusApi(AgentApi):
    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=ReplicaStatus.values)
        instance_id = _opt_id(max_length=64)
        reason = _opt_str(max_length=2000)
        message = _opt_str(max_length=2000)

    def post(self, request, agent_id, replica_id):
        agent = self.get_agent(agent_id)
        data = parse(self.InputSerializer, request)
        replica = replica_status_update(
            agent=agent,
            replica_id=replica_id,
            status=data["status"],
            instance_id=data.get("instance_id") or "",
            reason=data.get("reason") or data.get("message") or "",
        )
        return Response({"success": True, "replica_id": str(replica.pk), "status": replica.status})


class ReplicaConfigApi(AgentApi):
    def get(self, request, agent_id):
        return Response(replica_config(agent=self.get_agent(agent_id)))
