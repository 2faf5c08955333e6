"""Rebalance recommendations (docs/ARCHITECTURE.md §4): advisory. The agent posts one every 30 s while
AWS shows it; it is recorded once per window (a signal the risk analysis reads) and a switch is
recommended only to a clearly safer pool (agents/services/pool_policy.py `pool_for_rebalance`),
queued only with auto switch on, no open command and the cooldown allowing."""
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from agents.services.market import sample_time
from agents.locks import agent_lock
from agents.models import Agent, CommandSource, DecisionKind, Mode, Severity, SpotPool, TerminationEvent, TerminationEventStatus
from agents.services.commands import command_queue_automatic
from agents.services.decisions import client_dry_run, decision_record
from agents.services.events import system_event_log
from notifications.models import EventType
from notifications.services import webhook_event_emit
from agents.services.instances import instance_is_known, instance_unknown_log
from agents.services.pool_policy import pool_for_rebalance
from agents.services.termination_events import (
    UNKNOWN_INSTANCE_TEXT,
    Notice,
    rebalance_event_get_or_create,
    termination_event_seen_again,
)
from agents.states import termination_event_transition
from spotbackend.metrics import notice_handler

# Decision names stored in TerminationEvent.metadata["action"].
SWITCH = "switch"
MONITOR = "monitor"


@dataclass
class RebalanceDecision:
    event: TerminationEvent
    action: str  # "switch" | "monitor"
    target_mode: str
    target_pool_id: str
    reason: str
    command_id: str = ""


@notice_handler("rebalance_recommendation")
@transaction.atomic
def rebalance_recommendation_handle(*, agent: Agent, notice: Notice, now: datetime | None = None) -> RebalanceDecision:
    """Advisory: record it (a signal the risk analysis reads), and recommend a switch only to a clearly
    safer pool; queue it only with auto switch on, no open command and the cooldown allowing."""
    now = now or timezone.now()
    agent = agent_lock(agent_id=agent.pk)
    instance_id = notice.instance_id or agent.instance_id
    if not instance_is_known(agent=agent, instance_id=instance_id):
        instance_unknown_log(agent=agent, instance_id=instance_id, source="rebalance recommendation")
        return RebalanceDecision(event=TerminationEvent(), action=MONITOR, target_mode="",
                                 target_pool_id="", reason=UNKNOWN_INSTANCE_TEXT)
    is_primary = instance_id == agent.instance_id
    pool = agent.current_pool if is_primary and agent.current_mode == Mode.SPOT else None
    event, created = rebalance_event_get_or_create(agent=agent, instance_id=instance_id, detected_at=sample_time(reported=notice.detected_at, now=now),
                                      now=now, pool=pool)
    if is_primary:
        Agent.objects.filter(pk=agent.pk).update(last_rebalance_recommendation_at=now)
        agent.last_rebalance_recommendation_at = now
    if not created:
        termination_event_seen_again(event=event, now=now)
        meta = event.metadata or {}
        return RebalanceDecision(event=event, action=meta.get("action", MONITOR),
                                 target_mode=meta.get("target_mode", ""), target_pool_id=meta.get("target_pool_id", ""),
                                 reason=meta.get("reason", ""), command_id=meta.get("command_id", ""))

    dry = client_dry_run(agent=agent)
    action, target_mode, target_pool_id, reason, command = _rebalance_decide(
        agent=agent, event=event, is_primary=is_primary, pool=pool, now=now, dry_run=dry
    )
    queued = command is not None and not dry
    event.action_taken = f"{action}: command queued" if queued else (
        f"{action}: command would be queued (dry run)" if command is not None else action)
    termination_event_transition(event=event, to=TerminationEventStatus.HANDLING if queued else
                                 TerminationEventStatus.DETECTED, save=False)
    event.metadata = {"action": action, "target_mode": target_mode, "target_pool_id": target_pool_id,
                      "reason": reason, "command_id": str(command.pk) if queued else "", "dry_run": dry}
    event.save(update_fields=["action_taken", "status", "metadata"])
    decision_record(agent=agent, kind=DecisionKind.REBALANCE, action=action, dry_run=dry and command is not None,
                    reason=reason, instance_id=instance_id, from_pool_id=pool.pk if pool else "",
                    target_mode=target_mode, target_pool=SpotPool.objects.filter(pk=target_pool_id).first()
                    if action == SWITCH and target_pool_id else None, termination_event=event,
                    command_id=str(command.pk) if queued else None)
    command = command if queued else None
    system_event_log(
        agent=agent,
        event_type="rebalance_recommendation",
        severity=Severity.WARNING if action == SWITCH else Severity.INFO,
        message=f"Rebalance recommendation for {instance_id}: {action} ({reason})",
        metadata={"termination_event_id": event.pk, "target_pool_id": target_pool_id},
    )
    webhook_event_emit(client_id=agent.client_id, event_type=EventType.REBALANCE_RECOMMENDATION, data={
        "agent_id": str(agent.pk), "hostname": agent.hostname, "instance_id": instance_id,
        "pool_id": pool.pk if pool else "", "action": action, "target_mode": target_mode,
        "target_pool_id": target_pool_id, "reason": reason, "termination_event_id": event.pk,
    })
    return RebalanceDecision(event=event, action=action, target_mode=target_mode,
                             target_pool_id=target_pool_id, reason=reason,
                             command_id=str(command.pk) if command else "")


def _rebalance_decide(*, agent: Agent, event, is_primary: bool, pool, now, dry_run: bool = False):
    current_mode = agent.current_mode or Mode.UNKNOWN
    if not is_primary:
        return MONITOR, current_mode, "", f"instance is no longer the primary (agent runs on {agent.instance_id})", None
    if agent.current_mode != Mode.SPOT:
        return MONITOR, current_mode, "", "instance is not on spot: nothing to rebalance", None
    choice = pool_for_rebalance(agent=agent, pool=pool, now=now)
    if choice is None:
        return MONITOR, Mode.SPOT, pool.pk if pool else "", (
            "no clearly safer pool than the current one: keep monitoring"
        ), None
    reason = f"Current pool has elevated interruption risk; {choice.pool.pk}: {choice.reason}"
    command = None
    if agent.auto_switch_enabled:
        command = command_queue_automatic(agent=agent, choice=choice, source=CommandSource.REBALANCE, now=now,
                                      dry_run=dry_run, termination_event=event,
                                      reason=f"rebalance recommendation {event.pk}: {reason}")
    return SWITCH, Mode.SPOT, choice.pool.pk, reason, command

