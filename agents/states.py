"""The four state machines (docs/ARCHITECTURE.md §3): agent status, command, replica and termination
event. For each: the table of allowed moves and the one transition function every path calls. A move
outside a table raises IllegalTransition (a 409). Bulk paths that must move many rows in one statement
(the stale sweep, the heartbeat, closing open events) take their source states from the same table
through `*_sources(to)`, so a table change reaches them too."""
from datetime import datetime

from django.utils import timezone

from agents.models import (
    Agent,
    AgentStatus,
    Command,
    CommandStatus,
    Replica,
    ReplicaStatus,
    TerminationEvent,
    TerminationEventStatus,
)
from spotbackend.exceptions import ConflictError


class IllegalTransition(ConflictError):
    default_message = "This change is not allowed in the current state."


def _sources(table: dict[str, set[str]], to: str) -> list[str]:
    return [state for state, targets in table.items() if to in targets]


# --- Agent status -------------------------------------------------------------------------------
A = AgentStatus
# A terminating agent is never handed a switch (the notice's own handling wins); every other move
# between two states is made by some path (docs/ARCHITECTURE.md §3 lists which).
AGENT_ALLOWED: dict[str, set[str]] = {
    A.ONLINE: {A.DISABLED, A.SWITCHING, A.TERMINATING, A.OFFLINE},
    A.DISABLED: {A.ONLINE, A.SWITCHING, A.TERMINATING, A.OFFLINE},
    A.SWITCHING: {A.ONLINE, A.DISABLED, A.TERMINATING, A.OFFLINE},
    A.TERMINATING: {A.ONLINE, A.DISABLED, A.OFFLINE},
    A.OFFLINE: {A.ONLINE, A.DISABLED, A.SWITCHING, A.TERMINATING},
}
# A heartbeat's status may not end these: they end with a switch, a new primary, or a sweep.
STICKY_AGAINST_HEARTBEAT = {A.SWITCHING, A.TERMINATING}


def agent_status_can_change(*, current: str, to: str) -> bool:
    return current == to or to in AGENT_ALLOWED.get(current, set())


def agent_status_sources(to: str) -> list[str]:
    """The statuses a bulk UPDATE may move to `to` (the stale sweep filters on these)."""
    return _sources(AGENT_ALLOWED, to)


def agent_status_transition(*, agent: Agent, to: str, save: bool = True) -> bool:
    """Move the agent to `to`; return whether it changed. Refuses moves outside AGENT_ALLOWED."""
    if agent.status == to:
        return False
    if not agent_status_can_change(current=agent.status, to=to):
        raise IllegalTransition(f"Agent {agent.pk} is {agent.status}; it cannot become {to}.")
    agent.status = to
    if save:
        agent.save(update_fields=["status", "updated_at"])
    return True


def agent_status_serving(*, agent: Agent) -> str:
    """The status of an agent back in service: its `enabled` flag decides."""
    return A.ONLINE if agent.enabled else A.DISABLED


def agent_status_release(*, agent: Agent, save: bool = True) -> bool:
    """Back in service (online or disabled) after a switch, a takeover or silence."""
    return agent_status_transition(agent=agent, to=agent_status_serving(agent=agent), save=save)


def agent_status_after_heartbeat(*, agent: Agent, reported: str) -> str:
    """The status a heartbeat of the primary leaves. The heartbeat writes it with its one UPDATE
    (the hot path reads nothing more), so the rule is here and the move is checked against the table.
    The reported status wins unless the agent is switching or terminating (only `offline` ends
    those); an offline agent that reports nothing is back in service."""
    if reported in (A.ONLINE, A.DISABLED, A.OFFLINE):
        if agent.status in STICKY_AGAINST_HEARTBEAT and reported != A.OFFLINE:
            return agent.status
        to = reported
    elif agent.status == A.OFFLINE:
        to = agent_status_serving(agent=agent)
    else:
        return agent.status
    if not agent_status_can_change(current=agent.status, to=to):
        raise IllegalTransition(f"Agent {agent.pk} is {agent.status}; it cannot become {to}.")
    return to


# --- Command --------------------------------------------------------------------------------------
C = CommandStatus
# One open command per agent: pending or delivered. The executed callback may close a command that is
# still pending; a delivered one is in flight, so a newer command cannot supersede it.
COMMAND_ALLOWED: dict[str, set[str]] = {
    C.PENDING: {C.DELIVERED, C.SUCCEEDED, C.FAILED, C.SUPERSEDED, C.EXPIRED},
    C.DELIVERED: {C.SUCCEEDED, C.FAILED, C.EXPIRED},
    C.SUCCEEDED: set(),
    C.FAILED: set(),
    C.SUPERSEDED: set(),
    C.EXPIRED: set(),
}
COMMAND_OPEN = (C.PENDING, C.DELIVERED)


def command_can_change(*, current: str, to: str) -> bool:
    return current == to or to in COMMAND_ALLOWED.get(current, set())


def command_transition(
    *,
    command: Command,
    to: str,
    now: datetime | None = None,
    success: bool | None = None,
    message: str | None = None,
    extra: dict | None = None,
) -> bool:
    """Move the command to `to` and save it as a compare-and-set UPDATE (`WHERE status = <from>`), so
    two polls cannot both claim one command even without a lock. Closing (any final state) clears
    `is_open` and stamps `completed_at`. Returns False when it already was there or another request
    moved it first; illegal moves raise IllegalTransition."""
    current = command.status
    if current == to:
        return False
    if not command_can_change(current=current, to=to):
        raise IllegalTransition(f"Command {command.pk} is {current}; it cannot become {to}.")
    now = now or timezone.now()
    values: dict = {"status": to, **(extra or {})}
    if to not in COMMAND_OPEN:
        values.update(is_open=None, completed_at=now)
        if success is not None:
            values["success"] = success
    if message is not None:
        values["message"] = message[:2000]
    if not Command.objects.filter(pk=command.pk, status=current).update(**values):
        return False
    for field, value in values.items():
        setattr(command, field, value)
    return True


def commands_move(*, queryset, to: str, now: datetime | None = None, **values) -> int:
    """Bulk move (one UPDATE) of the commands in `queryset` whose status may move to `to` by the
    table; closing clears `is_open` and stamps `completed_at` as command_transition does."""
    sources = _sources(COMMAND_ALLOWED, to)
    if to not in COMMAND_OPEN:
        values.update(is_open=None, completed_at=now or timezone.now())
    return queryset.filter(status__in=sources).update(status=to, **values)


# --- Replica --------------------------------------------------------------------------------------
R = ReplicaStatus
# Forward moves may skip a step (the agent registers its emergency replica directly as `ready`; a
# replica the agent never launches is promoted through a switch, from launching or syncing);
# any live replica may be terminated; `promoted` and `terminated` are final.
REPLICA_ALLOWED: dict[str, set[str]] = {
    R.LAUNCHING: {R.SYNCING, R.READY, R.PROMOTING, R.TERMINATED},
    R.SYNCING: {R.READY, R.PROMOTING, R.TERMINATED},
    R.READY: {R.PROMOTING, R.TERMINATED},
    R.PROMOTING: {R.PROMOTED, R.TERMINATED},
    R.PROMOTED: set(),
    R.TERMINATED: set(),
}
REPLICA_LIVE = (R.LAUNCHING, R.SYNCING, R.READY, R.PROMOTING)
REPLICA_STAMPS = {R.READY: "ready_at", R.PROMOTED: "promoted_at", R.TERMINATED: "terminated_at"}


def replica_can_change(*, current: str, to: str) -> bool:
    return current == to or to in REPLICA_ALLOWED.get(current, set())


def replica_transition(*, replica: Replica, to: str, reason: str = "", now: datetime | None = None) -> bool:
    """Move the replica to `to` (saving it, stamping ready_at/promoted_at/terminated_at); False when
    it already is there. Illegal moves raise IllegalTransition (409)."""
    if to not in R.values:
        raise IllegalTransition(f"Unknown replica status '{to}'.")
    if replica.status == to:
        return False
    if not replica_can_change(current=replica.status, to=to):
        raise IllegalTransition(f"Replica {replica.pk} is {replica.status}; it cannot become {to}.")
    now = now or timezone.now()
    replica.status = to
    fields = ["status", "updated_at"]
    stamp = REPLICA_STAMPS.get(to)
    if stamp:
        setattr(replica, stamp, now)
        fields.append(stamp)
    if reason:
        replica.status_reason = reason[:2000]
        fields.append("status_reason")
    replica.save(update_fields=fields)
    return True


# --- Termination event ----------------------------------------------------------------------------
E = TerminationEventStatus
# detected -> handling -> resolved | failed. Staff may correct a final outcome (resolved <-> failed),
# nothing reopens an event.
EVENT_ALLOWED: dict[str, set[str]] = {
    E.DETECTED: {E.HANDLING, E.RESOLVED, E.FAILED},
    E.HANDLING: {E.RESOLVED, E.FAILED},
    E.RESOLVED: {E.FAILED},
    E.FAILED: {E.RESOLVED},
}
EVENT_OPEN = (E.DETECTED, E.HANDLING)
EVENT_FINAL = (E.RESOLVED, E.FAILED)


def termination_event_can_change(*, current: str, to: str) -> bool:
    return current == to or to in EVENT_ALLOWED.get(current, set())


def termination_event_transition(
    *, event: TerminationEvent, to: str, now: datetime | None = None, save: bool = True
) -> bool:
    """Move the event to `to`; a final state stamps `resolved_at`. With save=False the caller saves
    the row (with the decision it stores alongside). Illegal moves raise IllegalTransition."""
    if event.status == to:
        return False
    if not termination_event_can_change(current=event.status, to=to):
        raise IllegalTransition(f"Termination event {event.pk} is {event.status}; it cannot become {to}.")
    event.status = to
    fields = ["status"]
    if to in EVENT_FINAL:
        event.resolved_at = now or timezone.now()
        fields.append("resolved_at")
    if save:
        event.save(update_fields=fields)
    return True


def termination_events_move(*, queryset, to: str, now: datetime | None = None, **values) -> int:
    """Bulk move (one UPDATE) of the open events in `queryset` to a final state: only rows whose
    status may move to `to` by the table are touched. Returns how many moved."""
    if to not in EVENT_FINAL:
        raise ValueError(f"{to} is not a final status")
    sources = [s for s in _sources(EVENT_ALLOWED, to) if s in EVENT_OPEN]
    return queryset.filter(status__in=sources).update(status=to, resolved_at=now or timezone.now(), **values)
