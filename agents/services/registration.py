"""An agent's identity: register, and who its primary instance is (docs/API.md §1.1, §5). Heartbeats are
agents/services/heartbeats.py."""
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from agents import cache
from agents.locks import agent_lock
from agents.models import (
    Agent,
    AgentStatus,
    Command,
    CommandStatus,
    DecisionKind,
    Instance,
    InstanceState,
    Mode,
    Replica,
    ReplicaStatus,
)
from agents.services.commands import command_close
from agents.services.decisions import decision_record
from agents.services.events import system_event_log
from agents.services.instances import instance_make_primary, instance_seen
from agents.services.pools import pool_id_for, region_of_az
from agents.services.replicas import replica_promote, replica_promotion_settle
from agents.states import REPLICA_LIVE, agent_status_release, replica_transition



@dataclass
class RegisterPayload:
    instance_id: str
    logical_agent_id: str = ""
    hostname: str = ""
    instance_type: str = ""
    region: str = ""
    az: str = ""
    ami_id: str = ""
    agent_version: str = ""
    mode: str = ""
    private_ip: str = ""
    public_ip: str = ""


def _known(value: str | None) -> str:
    return "" if value in (None, "unknown") else value


def _instance_attrs(p: RegisterPayload) -> dict:
    mode = p.mode if p.mode in (Mode.SPOT, Mode.ONDEMAND) else ""
    attrs = {
        "instance_type": _known(p.instance_type),
        "region": p.region or region_of_az(_known(p.az)),
        "az": _known(p.az),
        "ami_id": _known(p.ami_id),
        "mode": mode,
    }
    return attrs


def _agent_fields(agent: Agent, p: RegisterPayload) -> None:
    for name in ("hostname", "agent_version", "private_ip", "public_ip"):
        value = _known(getattr(p, name))
        if value:
            setattr(agent, name, value)


def _spot_pool(attrs: dict):
    from agents.services.pools import pool_get_or_create

    if attrs.get("mode") == Mode.SPOT and attrs.get("instance_type") and attrs.get("az"):
        return pool_get_or_create(pool_id=pool_id_for(instance_type=attrs["instance_type"], az=attrs["az"]))
    return None


def agent_register(*, client, payload: RegisterPayload) -> tuple[Agent, bool]:
    """Return (agent, created). Identity is (client, logical_agent_id); the same agent comes back
    after a switch from its new instance. A replaced instance that registers again stays non-primary."""
    logical_id = payload.logical_agent_id or payload.instance_id
    for attempt in range(2):
        try:
            with transaction.atomic():
                agent, created = _register(client=client, logical_id=logical_id, payload=payload)
            return agent, created
        except IntegrityError:
            # Two first registrations raced on the unique (client, logical_agent_id): the loser retries
            # and finds the winner's row.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _register(*, client, logical_id: str, payload: RegisterPayload) -> tuple[Agent, bool]:
    now = timezone.now()
    attrs = _instance_attrs(payload)
    existing = Agent.objects.filter(client=client, logical_agent_id=logical_id).values_list("pk", flat=True).first()
    if existing is None:
        agent = Agent(client=client, logical_agent_id=logical_id, last_heartbeat_at=now)
        _agent_fields(agent, payload)
        agent.save()
        attrs["pool"] = _spot_pool(attrs)
        instance_make_primary(agent=agent, instance_id=payload.instance_id, at=now, attrs=attrs)
        agent.save()
        system_event_log(agent=agent, event_type="agent_registered", message=f"Agent registered on {payload.instance_id}")
        return agent, True

    agent = agent_lock(agent_id=existing)
    _agent_fields(agent, payload)
    if payload.instance_id == agent.instance_id:
        # The primary restarted: refresh what it tells, keep what it does not.
        attrs["pool"] = _spot_pool(attrs) if attrs.get("mode") else agent.current_pool
        instance_make_primary(agent=agent, instance_id=payload.instance_id, at=now, attrs=attrs)
        agent.last_heartbeat_at = now
        if agent.status == AgentStatus.OFFLINE:
            agent_status_release(agent=agent, save=False)
        agent.save()
        return agent, False

    known = Instance.objects.filter(agent=agent, instance_id=payload.instance_id).first()
    replica = Replica.objects.filter(agent=agent, instance_id=payload.instance_id, status__in=REPLICA_LIVE).first()
    if replica is not None and agent.status == AgentStatus.TERMINATING:
        # The emergency replica is up while the primary is being reclaimed: it takes over (v4 agents
        # never call promote themselves).
        if replica.status in (ReplicaStatus.LAUNCHING, ReplicaStatus.SYNCING):
            replica_transition(replica=replica, to=ReplicaStatus.READY, reason="its agent registered", now=now)
        old_instance_id = agent.instance_id
        replica_promote(agent=agent, replica_id=replica.pk, now=now)
        decision_record(agent=agent, kind=DecisionKind.PROMOTION, action="promote_registered_replica",
                        reason=f"its agent registered while {old_instance_id} is being reclaimed",
                        instance_id=old_instance_id, target_pool_id=replica.pool_id or "",
                        target_mode=Mode.SPOT if replica.pool_id else Mode.ONDEMAND, replica_id=replica.pk)
        agent = agent_lock(agent_id=agent.pk)
        _agent_fields(agent, payload)
        attrs["pool"] = _spot_pool(attrs) if attrs.get("mode") else agent.current_pool
        instance_make_primary(agent=agent, instance_id=payload.instance_id, at=now, attrs=attrs)
        agent.last_heartbeat_at = now
        agent.save()
        return agent, False
    if (known is not None and known.state != InstanceState.PRIMARY) or replica is not None:
        # A replaced instance restarted by systemd, or a replica: it must not steal the primary role.
        instance_seen(agent=agent, instance_id=payload.instance_id, at=now, attrs=attrs, registered=True)
        agent.save()
        system_event_log(
            agent=agent,
            event_type="non_primary_registered",
            severity="warning",
            message=f"Instance {payload.instance_id} registered again but is not the primary ({agent.instance_id})",
        )
        return agent, False

    # A new instance of this agent: the result of a switch (or a manual relaunch). It becomes primary.
    old_instance_id = agent.instance_id
    attrs["pool"] = _spot_pool(attrs)
    instance_make_primary(agent=agent, instance_id=payload.instance_id, at=now, attrs=attrs)
    agent.last_heartbeat_at = now
    _expire_delivered_command(agent=agent, new_attrs=attrs, now=now)
    replica_promotion_settle(agent=agent, instance_id=payload.instance_id, mode=attrs.get("mode", ""),
                             pool_id=attrs["pool"].pk if attrs.get("pool") else None, now=now)
    if agent.status in (AgentStatus.SWITCHING, AgentStatus.TERMINATING, AgentStatus.OFFLINE):
        agent_status_release(agent=agent, save=False)
    agent.save()
    system_event_log(
        agent=agent,
        event_type="primary_moved",
        message=f"Agent now runs on {payload.instance_id} (was {old_instance_id or 'none'})",
        metadata={"old_instance_id": old_instance_id, "new_instance_id": payload.instance_id},
    )
    return agent, False


def _expire_delivered_command(*, agent: Agent, new_attrs: dict, now) -> None:
    """The agent came back on another instance: its delivered command is over. It succeeded if the
    new instance is what the command asked for."""
    command = Command.objects.filter(agent=agent, is_open=True, status=CommandStatus.DELIVERED).first()
    if command is None:
        return
    mode_ok = new_attrs.get("mode") in ("", command.target_mode)
    pool = new_attrs.get("pool")
    pool_ok = command.target_mode != Mode.SPOT or command.target_pool_id is None or (
        pool is not None and pool.pk == command.target_pool_id
    ) or not new_attrs.get("az")
    success = bool(mode_ok and pool_ok)
    note = "agent re-registered on the target" if success else "agent re-registered elsewhere than the target"
    # The caller moves the agent's status itself (it saves the agent once).
    command_close(agent=agent, command=command, status=CommandStatus.EXPIRED, success=success, now=now,
                  message=f"{command.message} {note}" if command.message else note, release_agent=False)
    decision_record(agent=agent, kind=DecisionKind.EXPIRY, action="close_command_on_reregister",
                    reason=f"{note} ({'success' if success else 'failure'})", instance_id=agent.instance_id,
                    target_mode=command.target_mode, target_pool_id=command.target_pool_id or "",
                    command_id=command.pk)


@transaction.atomic
def agents_delete(*, agent_ids) -> int:
    """Delete agents and everything of theirs (staff, in the admin), and their cached entries."""
    ids = list(agent_ids)
    cache.agents_deleted(ids)
    return Agent.objects.filter(pk__in=ids).delete()[0]
