"""An agent's identity and liveness: register and heartbeat (API.md §1.1, §1.2, §5)."""
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from agents.cache import (
    agent_owner_remember,
    agents_state_changed,
    heartbeat_signature,
    heartbeat_signature_fill,
    heartbeat_signature_seen,
    heartbeat_write_behind,
)
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
from agents.services.instances import (
    instance_make_primary,
    instance_primary_end,
    instance_primary_resume,
    instance_seen,
)
from agents.services.pools import pool_id_for, region_of_az
from agents.services.replicas import LIVE_STATUSES, replica_promote, replica_promotion_settle, replica_transition
from agents.services.status import STICKY_AGAINST_HEARTBEAT, agent_status_transition

logger = logging.getLogger(__name__)

# A non-primary instance of the agent seen this recently is probably the one saying goodbye.
OVERLAP_WINDOW = timedelta(seconds=120)


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
                return _register(client=client, logical_id=logical_id, payload=payload)
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
        agent_owner_remember(agent_pk=agent.pk, client_pk=client.pk)  # no process asks the database
        return agent, True

    agent = agent_lock(agent_id=existing)
    _agent_fields(agent, payload)
    if payload.instance_id == agent.instance_id:
        # The primary restarted: refresh what it tells, keep what it does not.
        attrs["pool"] = _spot_pool(attrs) if attrs.get("mode") else agent.current_pool
        instance_make_primary(agent=agent, instance_id=payload.instance_id, at=now, attrs=attrs)
        agent.last_heartbeat_at = now
        if agent.status == AgentStatus.OFFLINE:
            agent_status_transition(agent=agent, to=AgentStatus.ONLINE if agent.enabled else AgentStatus.DISABLED, save=False)
        agent.save()
        return agent, False

    known = Instance.objects.filter(agent=agent, instance_id=payload.instance_id).first()
    replica = Replica.objects.filter(agent=agent, instance_id=payload.instance_id, status__in=LIVE_STATUSES).first()
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
        agent_status_transition(agent=agent, to=AgentStatus.ONLINE if agent.enabled else AgentStatus.DISABLED, save=False)
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


@dataclass
class HeartbeatPayload:
    status: str = ""
    instance_id: str = ""
    instance_type: str = ""
    mode: str = ""
    az: str = ""


def agent_heartbeat_fast(*, client, agent_pk, payload: HeartbeatPayload) -> bool:
    """The steady-state heartbeat: the primary instance says what the server already stores, so only
    the time moves (and never backwards, whichever host is first). Written behind through Redis when
    its signature is cached (no SQL), else one UPDATE with no read. False when anything differs: the
    caller takes `agent_heartbeat`, which knows every rule."""
    if not payload.instance_id or payload.status not in ("", AgentStatus.ONLINE, AgentStatus.DISABLED):
        return False
    now = timezone.now()
    signature = seen = None
    complete = (payload.status and payload.mode in (Mode.SPOT, Mode.ONDEMAND)
                and payload.instance_type not in ("", "unknown") and payload.az not in ("", "unknown"))
    if complete and settings.HEARTBEAT_WRITE_BEHIND:
        signature = heartbeat_signature(instance_id=payload.instance_id, status=payload.status,
                                        instance_type=payload.instance_type, az=payload.az, mode=payload.mode)
        oldest = heartbeat_write_behind(agent_pk=agent_pk, signature=signature, at=now.timestamp())
        if oldest is not None:
            if oldest > settings.HEARTBEAT_FLUSH_OVERDUE_SECONDS:
                _flush_overdue()
            return True
        seen = heartbeat_signature_seen(agent_pk=agent_pk)
    match = Q(pk=agent_pk, client=client, instance_id=payload.instance_id)
    match &= Q(status=payload.status) if payload.status else ~Q(status=AgentStatus.OFFLINE)
    if payload.instance_type and payload.instance_type != "unknown":
        match &= Q(instance_type=payload.instance_type)
    if payload.az and payload.az != "unknown":
        match &= Q(az=payload.az)
    if payload.mode in (Mode.SPOT, Mode.ONDEMAND):
        match &= Q(current_mode=payload.mode)
    moved = Agent.objects.filter(match).update(
        last_heartbeat_at=Greatest(Coalesce(F("last_heartbeat_at"), Value(now)), Value(now)), updated_at=now
    )
    if moved == 1 and signature is not None:
        # The row matched, so the stored signature is the payload's: later heartbeats go behind.
        heartbeat_signature_fill(agent_pk=agent_pk, seen=seen, signature=signature)
    return moved == 1


def _flush_overdue() -> None:
    """The periodic flush has not run for a while (worker or beat down): this request does it."""
    from agents.services.heartbeats import heartbeats_flush

    try:
        heartbeats_flush()
    except Exception:  # the heartbeat itself is recorded; the next request or task retries the flush
        logger.exception("overdue heartbeat flush failed")


def agent_heartbeat(*, agent: Agent, payload: HeartbeatPayload) -> str:
    """Record a heartbeat. Returns what was done: 'primary', 'non_primary' or 'offline_ignored'.

    Missing or null fields never overwrite stored ones; a non-primary instance never re-points the
    agent or changes its status (API.md §5)."""
    now = timezone.now()
    if payload.instance_id and payload.instance_id != agent.instance_id:
        if instance_seen(agent=agent, instance_id=payload.instance_id, at=now) is None:
            return "unknown_instance"
        return "non_primary"

    if payload.status == AgentStatus.OFFLINE and not payload.instance_id:
        # The goodbye of a shutting-down agent carries no instance id. If another instance of this
        # agent was heard a moment ago (even one whose switch report says it terminated itself: the
        # process says goodbye seconds later), it is that one leaving, not the primary.
        other_alive = (
            Instance.objects.filter(agent=agent, last_seen_at__gte=now - OVERLAP_WINDOW)
            .exclude(instance_id=agent.instance_id)
            .exists()
        )
        if other_alive:
            return "offline_ignored"

    update: dict = {"last_heartbeat_at": Greatest(Coalesce(F("last_heartbeat_at"), Value(now)), Value(now))}
    if payload.instance_type and payload.instance_type != "unknown":
        update["instance_type"] = payload.instance_type
    if payload.az and payload.az != "unknown":
        update["az"] = payload.az
    if payload.mode in (Mode.SPOT, Mode.ONDEMAND):
        update["current_mode"] = payload.mode
    wanted = payload.status
    if wanted in (AgentStatus.ONLINE, AgentStatus.DISABLED, AgentStatus.OFFLINE):
        if agent.status in STICKY_AGAINST_HEARTBEAT and wanted != AgentStatus.OFFLINE:
            pass
        elif wanted != agent.status:
            update["status"] = wanted
    elif agent.status == AgentStatus.OFFLINE:
        update["status"] = AgentStatus.ONLINE if agent.enabled else AgentStatus.DISABLED
    # One UPDATE on the hot path; fields not in `update` keep their stored values.
    Agent.objects.filter(pk=agent.pk).update(updated_at=now, **update)
    if "status" in update:
        # Rare: the goodbye ends the primary's paid interval; a return from offline reopens it.
        if update["status"] == AgentStatus.OFFLINE:
            instance_primary_end(agent=agent, at=now)
        elif agent.status == AgentStatus.OFFLINE:
            instance_primary_resume(agent=agent)
    if len(update) > 1:
        agents_state_changed(agent_pks=[agent.pk])
    update["last_heartbeat_at"] = max(agent.last_heartbeat_at or now, now)
    for key, value in update.items():
        setattr(agent, key, value)
    return "primary"

