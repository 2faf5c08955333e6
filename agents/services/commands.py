"""Switch commands (docs/ARCHITECTURE.md §3): pending -> delivered -> succeeded/failed; superseded; expired.
Every status change goes through `command_transition` (agents/states.py)."""
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agents.locks import agent_lock
from agents.models import MANUAL_PRIORITY, Agent, AgentStatus, Command, CommandStatus, CommandSource, DecisionKind, Mode, SpotPool
from agents import cache
from agents.selectors import agent_pending_command
from agents.services.events import system_event_log
from notifications.models import EventType
from notifications.services import webhook_event_emit
from agents.services.decisions import decision_record
from agents.services.pool_policy import PoolChoice, pool_for_command
from agents.states import agent_status_can_change, agent_status_release, agent_status_transition, command_transition
from spotbackend.exceptions import ConflictError


# Automatic commands rank below the dashboard's (the agent labels >= 50 "manual").
AUTO_PRIORITY = 30


class NoSpotPool(ConflictError):
    default_message = "No spot pool with a recent price is known for this agent yet."


def command_resolve_pool(*, agent: Agent, target_mode: str, target_pool_id: str) -> SpotPool | None:
    """A spot command always carries a concrete pool: an empty one is the best pool for the agent
    (not its current one). Raises NoSpotPool when none qualifies."""
    if target_mode != Mode.SPOT:
        return None
    if target_pool_id:
        pool = SpotPool.objects.filter(pk=target_pool_id).first()
        if pool is None:
            raise NoSpotPool(f"Unknown spot pool '{target_pool_id}'.")
        return pool
    choice = pool_for_command(agent=agent)
    if choice.pool is None:
        raise NoSpotPool(f"No spot pool to switch to: {choice.reason}.")
    return choice.pool


def command_close(
    *, agent: Agent, command: Command, status: str, success: bool, message: str, now=None, release_agent: bool = True
) -> None:
    """Close an open command (succeeded, failed or expired). With `release_agent`, an agent still
    `switching` goes back to online (or disabled). The caller holds the agent row lock."""
    command_transition(command=command, to=status, success=success, message=message, now=now)
    if release_agent and agent.status == AgentStatus.SWITCHING:
        agent_status_release(agent=agent)


def _appended(old: str, note: str) -> str:
    return f"{old} {note}" if old else note


def command_expire_stale(*, agent: Agent, now=None) -> Command | None:
    """A delivered command that got no answer within COMMAND_DELIVERY_TIMEOUT (the agent died
    mid-switch) is expired as failed, so that it does not block the agent's next command forever.
    The caller holds the agent row lock."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.COMMAND_DELIVERY_TIMEOUT)
    command = Command.objects.filter(
        agent=agent, is_open=True, status=CommandStatus.DELIVERED, delivered_at__lt=cutoff
    ).first()
    if command is None:
        return None
    command_close(agent=agent, command=command, status=CommandStatus.EXPIRED, success=False, now=now,
                  message=_appended(command.message, "no answer from the agent in time"))
    decision_record(agent=agent, kind=DecisionKind.EXPIRY, action="expire_command",
                    reason=f"delivered at {command.delivered_at:%Y-%m-%d %H:%M:%S}Z, no answer within "
                    f"COMMAND_DELIVERY_TIMEOUT ({settings.COMMAND_DELIVERY_TIMEOUT} s)",
                    instance_id=command.delivered_instance_id, target_mode=command.target_mode,
                    target_pool_id=command.target_pool_id or "", command_id=command.pk)
    system_event_log(
        agent=agent,
        event_type="command_expired",
        severity="warning",
        message=f"Command {command.pk} delivered at {command.delivered_at:%Y-%m-%d %H:%M:%S}Z got no answer; expired",
        metadata={"command_id": str(command.pk)},
    )
    return command


@transaction.atomic
def command_issue(
    *,
    agent: Agent,
    target_mode: str,
    target_pool_id: str = "",
    priority: int = MANUAL_PRIORITY,
    source: str = CommandSource.DASHBOARD,
    reason: str = "",
) -> Command:
    """Queue a switch. A newer command supersedes a pending one; a delivered one is in flight and
    blocks a new command (409) until it closes."""
    agent = agent_lock(agent_id=agent.pk)
    pool = command_resolve_pool(agent=agent, target_mode=target_mode, target_pool_id=target_pool_id)
    command_expire_stale(agent=agent)
    open_command = Command.objects.filter(agent=agent, is_open=True).first()
    if open_command is not None:
        if open_command.status == CommandStatus.DELIVERED:
            raise ConflictError("A switch is in progress for this agent; wait until it completes.")
        command_transition(command=open_command, to=CommandStatus.SUPERSEDED)
    command = Command.objects.create(
        agent=agent, target_mode=target_mode, target_pool=pool, priority=priority, source=source, reason=reason
    )
    cache.commands_issued(agent.pk)
    system_event_log(
        agent=agent,
        event_type="command_issued",
        message=f"Switch to {target_mode} {pool.pk if pool else ''} queued ({source})".replace("  ", " "),
        metadata={"command_id": str(command.pk), "priority": priority},
    )
    return command


def commands_poll(*, client, agent_id, instance_id: str = "") -> list[Command]:
    """The agent's poll (docs/API.md §1.4): usually no query (agents/cache.py)."""
    command = agent_pending_command(client=client, agent_id=agent_id)
    if command is None:
        return []
    cache.commands_claimed(command.agent_id)
    return commands_claim_pending(agent=command.agent, instance_id=instance_id)


def commands_claim_pending(*, agent: Agent, instance_id: str = "") -> list[Command]:
    """Hand out the agent's pending command once: it is claimed (delivered, bound to the polling
    instance) in the same step, so no other poll, and no other instance, ever receives it again."""
    command = Command.objects.filter(agent=agent, is_open=True, status=CommandStatus.PENDING).first()
    if command is None:
        return []
    now = timezone.now()
    bound_to = instance_id or agent.instance_id
    claimed = command_transition(command=command, to=CommandStatus.DELIVERED, now=now,
                                 extra={"delivered_at": now, "delivered_instance_id": bound_to})
    if not claimed:
        return []  # another poll took it a moment ago
    # A terminating agent stays terminating: its notice's handling wins over the switch.
    if agent_status_can_change(current=agent.status, to=AgentStatus.SWITCHING):
        agent_status_transition(agent=agent, to=AgentStatus.SWITCHING)
    return [command]


@transaction.atomic
def command_mark_executed(*, agent: Agent, command_id, success: bool = True, message: str = "") -> Command:
    """Close a command from the agent's callback. Repeats, and callbacks for a command the server
    already closed (expired on re-register), keep the first outcome."""
    agent = agent_lock(agent_id=agent.pk)
    command = Command.objects.select_for_update().get(pk=command_id, agent=agent)
    if command.is_open:
        command_close(agent=agent, command=command, success=success, message=message,
                      status=CommandStatus.SUCCEEDED if success else CommandStatus.FAILED)
        system_event_log(
            agent=agent,
            event_type="command_executed",
            severity="info" if success else "error",
            message=f"Command {command.pk} {'succeeded' if success else 'failed'}: {message[:200]}",
            metadata={"command_id": str(command.pk)},
        )
    elif message and not command.message:
        Command.objects.filter(pk=command.pk).update(message=message[:2000])
    return command


class WouldQueue:
    """Dry run: the automatic command the server would have queued (nothing is issued)."""

    pk = ""


def command_queue_automatic(*, agent: Agent, choice: PoolChoice, source: str, reason: str, now: datetime,
                            dry_run: bool = False, termination_event=None):
    """Queue an automatic switch (a failover or rebalance) when no command is open and the agent's
    automatic-command cooldown allows; else None. In dry run nothing is issued: a WouldQueue stands for
    the command. Either way the automatic switch is recorded as a decision. The caller holds the lock."""
    command_expire_stale(agent=agent, now=now)
    if Command.objects.filter(agent=agent, is_open=True).exists():
        return None
    recent = now - timedelta(seconds=settings.POOL_COOLDOWN_SECONDS)
    automatic = (CommandSource.REBALANCE, CommandSource.TERMINATION)
    if Command.objects.filter(agent=agent, source__in=automatic, created_at__gte=recent).exists():
        return None
    command = WouldQueue() if dry_run else command_issue(
        agent=agent,
        target_mode=choice.target_mode,
        target_pool_id=choice.pool.pk if choice.pool is not None else "",
        priority=AUTO_PRIORITY,
        source=source,
        reason=reason[:2000],
    )
    decision_record(agent=agent, kind=DecisionKind.AUTO_SWITCH, action=f"queue_{source}_switch", dry_run=dry_run,
                    reason=reason, instance_id=agent.instance_id, from_pool_id=agent.current_pool_id,
                    target_mode=choice.target_mode, target_pool=choice.pool, termination_event=termination_event,
                    command_id=command.pk or None)
    if not dry_run:
        webhook_event_emit(client_id=agent.client_id, event_type=EventType.SWITCH_AUTOMATIC, now=now, data={
            "agent_id": str(agent.pk), "hostname": agent.hostname, "instance_id": agent.instance_id,
            "source": source, "from_pool_id": agent.current_pool_id or "", "target_mode": choice.target_mode,
            "target_pool_id": choice.pool.pk if choice.pool is not None else "", "reason": reason[:500],
            "command_id": str(command.pk),
        })
    return command
