"""Replicas (docs/ARCHITECTURE.md §3): launching -> syncing -> ready -> promoting -> promoted | terminated.

Every status change goes through `replica_transition` (agents/states.py); promotion moves the agent's primary instance
through `instance_make_primary`, so an agent always has exactly one primary."""
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from agents.locks import agent_lock
from agents.models import (
    REPLICA_LIMIT,
    Agent,
    AgentStatus,
    CommandSource,
    DecisionKind,
    InstanceState,
    Mode,
    Replica,
    ReplicaStatus,
    ReplicaType,
)
from agents.services.decisions import decision_record
from agents.services.events import system_event_log
from notifications.models import EventType
from notifications.services import webhook_event_emit
from agents.services.instances import instance_make_primary
from agents.services.pool_policy import pool_for_manual_replica
from agents.services.pools import pool_get_or_create
from agents.services.termination_events import termination_notice_link_replica, termination_notices_resolve_by_promotion
from agents.states import REPLICA_LIVE, agent_status_release, replica_can_change, replica_transition
from spotbackend.exceptions import ConflictError, NotFoundError

R = ReplicaStatus


class ReplicaConflict(ConflictError):
    default_message = "This replica cannot make that change in its current state."


def replica_get_for_agent(*, agent: Agent, replica_id, for_update: bool = False) -> Replica:
    """The agent's own replica, else NotFoundError (404) for another agent's or client's replica, a
    malformed id or none alike: never reveal that something exists."""
    try:
        pk = uuid.UUID(str(replica_id))
    except (TypeError, ValueError, AttributeError):
        raise NotFoundError("Replica not found.") from None
    qs = Replica.objects.filter(agent=agent, pk=pk)
    replica = (qs.select_for_update() if for_update else qs).first()
    if replica is None:
        raise NotFoundError("Replica not found.")
    return replica


@transaction.atomic
def replica_create(
    *,
    agent: Agent,
    replica_type: str,
    instance_id: str = "",
    parent_instance_id: str = "",
    pool_id: str = "",
    status: str = ReplicaStatus.LAUNCHING,
    hourly_cost=None,
) -> tuple[Replica, bool]:
    """Record a replica; returns (replica, created).

    Emergency replicas are registered by the agent once the instance runs (docs/API.md §5): a resend for
    the same instance updates the same row. An emergency replica is linked to the open termination
    notice of its parent instance and counted on the agent. A manual replica with no pool gets the
    best pool for the agent (docs/ARCHITECTURE.md §4)."""
    agent = agent_lock(agent_id=agent.pk)
    if replica_type not in ReplicaType.values:
        raise ReplicaConflict(f"Unknown replica type '{replica_type}'.")
    if status not in (R.LAUNCHING, R.SYNCING, R.READY):
        raise ReplicaConflict(f"A new replica cannot start as '{status}'.")

    if instance_id:
        existing = (
            Replica.objects.select_for_update()
            .filter(agent=agent, instance_id=instance_id, status__in=REPLICA_LIVE)
            .first()
        )
        if existing is not None:
            if existing.status != status and replica_can_change(current=existing.status, to=status):
                replica_transition(replica=existing, to=status)
            return existing, False

    if replica_type == ReplicaType.MANUAL and agent.auto_switch_enabled:
        raise ReplicaConflict("Manual replicas and automatic switching are exclusive: turn auto switch off first.")
    live = Replica.objects.filter(agent=agent, replica_type=replica_type, status__in=REPLICA_LIVE).count()
    if live >= REPLICA_LIMIT:
        raise ReplicaConflict(f"This agent already has {live} live {replica_type} replicas.")

    pool = pool_get_or_create(pool_id=pool_id) if pool_id else None
    reason = ""
    if pool is None and replica_type == ReplicaType.MANUAL:
        choice = pool_for_manual_replica(agent=agent)
        pool, reason = choice.pool, choice.reason
    if hourly_cost is None and pool is not None:
        hourly_cost = pool.latest_price

    now = timezone.now()
    replica = Replica.objects.create(
        agent=agent,
        client_id=agent.client_id,
        instance_id=instance_id,
        replica_type=replica_type,
        parent_instance_id=parent_instance_id or (agent.instance_id if replica_type == ReplicaType.EMERGENCY else ""),
        pool=pool,
        status=status,
        hourly_cost=hourly_cost,
        status_reason=reason,
        ready_at=now if status == R.READY else None,
    )
    if replica_type == ReplicaType.EMERGENCY:
        termination_notice_link_replica(agent=agent, replica=replica)
        agent.emergency_replica_count += 1
        agent.save(update_fields=["emergency_replica_count", "updated_at"])
    system_event_log(
        agent=agent,
        event_type="replica_created",
        message=f"{replica_type.capitalize()} replica {instance_id or replica.pk} recorded "
        f"in {pool.pk if pool else 'no pool'} ({status})",
        metadata={"replica_id": str(replica.pk), "termination_event_id": replica.termination_event_id},
    )
    if replica_type == ReplicaType.EMERGENCY:
        webhook_event_emit(client_id=agent.client_id, event_type=EventType.REPLICA_CREATED, data={
            "agent_id": str(agent.pk), "hostname": agent.hostname, "replica_id": str(replica.pk),
            "instance_id": instance_id, "parent_instance_id": replica.parent_instance_id,
            "pool_id": pool.pk if pool else "", "status": status,
        })
    return replica, True


@transaction.atomic
def replica_status_update(*, agent: Agent, replica_id, status: str, instance_id: str = "", reason: str = "") -> Replica:
    agent = agent_lock(agent_id=agent.pk)
    replica = replica_get_for_agent(agent=agent, replica_id=replica_id, for_update=True)
    if status == R.PROMOTED:
        # The one road to `promoted` is a promotion: it moves the primary instance too.
        return replica_promote(agent=agent, replica_id=replica.pk)
    if instance_id and not replica.instance_id:
        replica.instance_id = instance_id
        replica.save(update_fields=["instance_id", "updated_at"])
    replica_transition(replica=replica, to=status, reason=reason)
    return replica


@transaction.atomic
def replica_terminate(*, agent: Agent, replica_id, reason: str = "terminated on request") -> Replica:
    agent = agent_lock(agent_id=agent.pk)
    replica = replica_get_for_agent(agent=agent, replica_id=replica_id, for_update=True)
    if replica_transition(replica=replica, to=R.TERMINATED, reason=reason):
        system_event_log(
            agent=agent,
            event_type="replica_terminated",
            message=f"Replica {replica.instance_id or replica.pk} terminated: {reason}",
            metadata={"replica_id": str(replica.pk)},
        )
    return replica


@transaction.atomic
def replicas_terminate(*, agent: Agent, replica_type: str, reason: str = "") -> list[str]:
    """End every live replica of one type (mutual exclusivity of manual replicas and auto switch);
    return the ids of the replicas it ended."""
    agent = agent_lock(agent_id=agent.pk)
    reason = reason or f"{replica_type} replicas turned off"
    ended = []
    for replica in Replica.objects.select_for_update().filter(
        agent=agent, replica_type=replica_type, status__in=REPLICA_LIVE
    ):
        replica_transition(replica=replica, to=R.TERMINATED, reason=reason)
        ended.append(str(replica.pk))
    count = len(ended)
    if count:
        system_event_log(
            agent=agent,
            event_type="replicas_terminated",
            message=f"{count} {replica_type} replica(s) terminated: {reason}",
            metadata={"replica_type": replica_type, "count": count},
        )
    return ended


@transaction.atomic
def replica_promote(*, agent: Agent, replica_id, now: datetime | None = None) -> Replica:
    """The replica becomes the agent's primary instance; the old primary is replaced (exactly one
    primary, always). Open termination notices of the old primary are resolved by it."""
    now = now or timezone.now()
    agent = agent_lock(agent_id=agent.pk)
    replica = replica_get_for_agent(agent=agent, replica_id=replica_id, for_update=True)
    if replica.status == R.PROMOTED:
        return replica
    if replica.status not in (R.READY, R.PROMOTING):
        raise ReplicaConflict(f"Replica {replica.pk} is {replica.status}; only a ready replica can be promoted.")
    if not replica.instance_id:
        raise ReplicaConflict(f"Replica {replica.pk} has no instance yet; it cannot be promoted.")
    old_instance_id = agent.instance_id
    replica_transition(replica=replica, to=R.PROMOTING, now=now)
    pool = replica.pool
    attrs = {"mode": Mode.SPOT, "pool": pool, "instance_type": pool.instance_type, "az": pool.az,
             "region": pool.region} if pool is not None else {}
    instance_make_primary(agent=agent, instance_id=replica.instance_id, at=now, attrs=attrs,
                          old_state=InstanceState.REPLACED)
    replica_transition(replica=replica, to=R.PROMOTED, now=now, reason=f"promoted over {old_instance_id}")
    if agent.status in (AgentStatus.TERMINATING, AgentStatus.SWITCHING):
        # The agent now runs on a healthy instance.
        agent_status_release(agent=agent, save=False)
    agent.save()
    termination_notices_resolve_by_promotion(agent=agent, old_instance_id=old_instance_id, replica=replica, now=now)
    system_event_log(
        agent=agent,
        event_type="replica_promoted",
        severity="warning",
        message=f"Replica {replica.instance_id} promoted; agent moved from {old_instance_id}",
        metadata={"replica_id": str(replica.pk), "old_instance_id": old_instance_id},
    )
    return replica


@dataclass
class PromoteOutcome:
    replica: Replica
    action: str  # "promoted" (a ready replica, at once) | "switch_queued" (the agent will launch it)
    message: str
    command_id: str = ""


@transaction.atomic
def replica_promote_request(*, agent: Agent, replica_id, now: datetime | None = None) -> PromoteOutcome:
    """The dashboard's *Promote* (issue 9, item 2). A ready replica with an instance is promoted at once.
    Any other live replica is one the v4 agent will never launch nor promote: the promotion becomes a
    manual switch command into the replica's pool (priority >= 50), the replica goes `promoting`, and it
    becomes `promoted` when the agent's new instance registers in that pool (replica_promotion_settle)."""
    from agents.models import MANUAL_PRIORITY
    from agents.services.commands import command_issue

    now = now or timezone.now()
    agent = agent_lock(agent_id=agent.pk)
    replica = replica_get_for_agent(agent=agent, replica_id=replica_id, for_update=True)
    if replica.status == R.PROMOTED or (replica.status == R.READY and replica.instance_id):
        replica = replica_promote(agent=agent, replica_id=replica.pk, now=now)
        return PromoteOutcome(replica=replica, action="promoted",
                              message=f"Replica promoted: the agent now runs on {replica.instance_id}.")
    if replica.status == R.PROMOTING and replica.promote_command_id:
        return PromoteOutcome(replica=replica, action="switch_queued", command_id=str(replica.promote_command_id),
                              message=f"Promotion already under way (command {replica.promote_command_id}).")
    if replica.status not in (R.LAUNCHING, R.SYNCING, R.READY):
        raise ReplicaConflict(f"Replica {replica.pk} is {replica.status}; it cannot be promoted.")
    target_mode = Mode.SPOT if replica.pool_id else Mode.ONDEMAND
    command = command_issue(agent=agent, target_mode=target_mode, target_pool_id=replica.pool_id or "",
                            priority=MANUAL_PRIORITY, source=CommandSource.PROMOTE,
                            reason=f"promote {replica.replica_type} replica {replica.pk}")
    replica_transition(replica=replica, to=R.PROMOTING, now=now,
                       reason=f"promotion requested: switch {command.pk} into {replica.pool_id or 'on-demand'}")
    replica.promote_command = command
    replica.save(update_fields=["promote_command", "updated_at"])
    system_event_log(
        agent=agent,
        event_type="replica_promotion_requested",
        message=f"Replica {replica.pk} will be promoted through switch {command.pk} "
        f"into {replica.pool_id or 'on-demand'}",
        metadata={"replica_id": str(replica.pk), "command_id": str(command.pk)},
    )
    return PromoteOutcome(
        replica=replica, action="switch_queued", command_id=str(command.pk),
        message=f"The agent will switch to {replica.pool_id or 'on-demand'} at its next poll; the replica "
        "becomes promoted when the new instance registers there.",
    )


def replica_promotion_settle(*, agent: Agent, instance_id: str, mode: str, pool_id: str | None,
                             now: datetime | None = None) -> list[Replica]:
    """The agent now runs on a new instance: a `promoting` replica waiting for its switch becomes
    `promoted` (on that instance) when the instance landed in the replica's pool (or on-demand for an
    on-demand one, or anywhere when the agent did not say where), else it is terminated with the reason.
    The caller holds the agent row lock."""
    now = now or timezone.now()
    settled = []
    for replica in Replica.objects.select_for_update().filter(
        agent=agent, status=R.PROMOTING, promote_command__isnull=False
    ):
        wanted_spot = bool(replica.pool_id)
        landed = (
            not mode
            or (wanted_spot and mode == Mode.SPOT and (pool_id is None or pool_id == replica.pool_id))
            or (not wanted_spot and mode == Mode.ONDEMAND)
        )
        if landed:
            replica.instance_id = replica.instance_id or instance_id
            replica.save(update_fields=["instance_id", "updated_at"])
            replica_transition(replica=replica, to=R.PROMOTED, now=now,
                               reason=f"its switch landed: the agent now runs on {instance_id}")
            event, severity = "replica_promoted", "warning"
        else:
            replica_transition(replica=replica, to=R.TERMINATED, now=now,
                               reason=f"the promotion switch landed elsewhere ({instance_id}, {pool_id or mode})")
            event, severity = "replica_terminated", "warning"
        decision_record(agent=agent, kind=DecisionKind.PROMOTION,
                        action="promote_replica" if landed else "end_replica_landed_elsewhere",
                        reason=replica.status_reason, instance_id=instance_id, target_mode=mode,
                        target_pool_id=pool_id or "", replica_id=replica.pk, command_id=replica.promote_command_id)
        system_event_log(agent=agent, event_type=event, severity=severity,
                         message=f"Replica {replica.pk}: {replica.status_reason}",
                         metadata={"replica_id": str(replica.pk), "instance_id": instance_id})
        settled.append(replica)
    return settled
