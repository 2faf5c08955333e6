"""Spot interruptions (ARCHITECTURE.md §4): termination notices and rebalance recommendations.

The agent posts a notice every 5 s (a recommendation every 30 s) while AWS shows it. One
TerminationEvent row per notice; the decision is taken once, when that row is created, under the
agent row lock, so that ten simultaneous posts produce one `create_emergency_replica: true`.
Repeats answer the stored decision with `create_emergency_replica: false`.

The request path makes a few indexed queries and no network call: the webhook goes out from a
Celery task after commit."""
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.locks import agent_lock
from agents.models import (
    Agent,
    AgentStatus,
    Command,
    CommandStatus,
    DecisionKind,
    Mode,
    Replica,
    ReplicaStatus,
    RiskRecommendation,
    Severity,
    SpotPool,
    TerminationEvent,
    TerminationEventStatus,
    TerminationEventType,
)
from agents.services.commands import command_expire_stale, command_issue
from agents.services.decisions import client_dry_run, decision_record
from agents.services.events import system_event_log
from agents.services.instances import instance_is_known, instance_primary_end, instance_unknown_log
from agents.services.market import sample_time
from agents.services.pools import RISK_BUCKET, PoolChoice, pool_select
from agents.services.status import agent_status_transition
from notifications.services import notification_enqueue

# Automatic commands rank below the dashboard's (the agent labels >= 50 "manual").
AUTO_PRIORITY = 30
# A recommendation seen again within this window is the same recommendation.
REBALANCE_DEDUPE_WINDOW = timedelta(hours=1)
# A notice without a termination time, seen again within this window, is the same notice.
NOTICE_DEDUPE_WINDOW = timedelta(minutes=10)
# AWS reclaims a spot instance two minutes after the notice: the end when a notice names no time.
NOTICE_LEAD_TIME = timedelta(minutes=2)
OPEN_EVENT = (TerminationEventStatus.DETECTED, TerminationEventStatus.HANDLING)

# Decision names stored in TerminationEvent.action_taken.
CREATE_REPLICA = "create_emergency_replica"
PROMOTE_REPLICA = "promote_replica"
WAIT_FOR_REPLICA = "wait_for_replica"
QUEUE_SWITCH = "queue_failover_switch"
NOTIFY_ONLY = "notify_only"
NOT_PRIMARY = "ignored_not_primary"
SWITCH = "switch"
MONITOR = "monitor"


@dataclass
class Notice:
    instance_id: str = ""
    termination_time: datetime | None = None  # `termination_time` (v4) or `time` (the request document)
    action: str = ""
    detected_at: datetime | None = None


@dataclass
class TerminationDecision:
    event: TerminationEvent
    created: bool
    action: str
    create_emergency_replica: bool
    target_mode: str
    target_pool_id: str
    instructions: str
    replica_id: str = ""
    command_id: str = ""

    def as_response(self) -> dict:
        body = {
            "success": True,
            "create_emergency_replica": self.create_emergency_replica,
            "target_pool_id": self.target_pool_id,
            "target_mode": self.target_mode,
            "instructions": self.instructions,
            "action": self.action,
            "event_id": self.event.pk,
        }
        if self.replica_id:
            body["replica_id"] = self.replica_id
        if self.command_id:
            body["command_id"] = self.command_id
        return body


@dataclass
class RebalanceDecision:
    event: TerminationEvent
    created: bool
    action: str  # "switch" | "monitor"
    target_mode: str
    target_pool_id: str
    reason: str
    command_id: str = ""
    extra: dict = field(default_factory=dict)

    def as_response(self) -> dict:
        body = {
            "success": True,
            "action": self.action,
            "target_mode": self.target_mode,
            "target_pool_id": self.target_pool_id,
            "reason": self.reason,
            "event_id": self.event.pk,
        }
        if self.command_id:
            body["command_id"] = self.command_id
        return body


def _iso(value: datetime) -> str:
    return value.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def pool_failover_select(*, agent: Agent, dying_pool: SpotPool | None, now: datetime | None = None) -> PoolChoice:
    """The failover target for every path: same type and region, not the dying pool, fresh price,
    not cooling down, not `avoid`, never riskier than the current pool; on-demand when none."""
    exclude = (dying_pool.pk,) if dying_pool is not None else ()
    return pool_select(
        instance_type=agent.instance_type, region=agent.region, exclude_pool_ids=exclude, max_risk_of=dying_pool,
        now=now, client_id=agent.client_id,
    )


def _pool_cooldown(*, pool: SpotPool | None, now: datetime) -> None:
    """A pool that just produced a termination notice is not a failover target for a while."""
    if pool is None:
        return
    until = now + timedelta(seconds=settings.POOL_COOLDOWN_SECONDS)
    SpotPool.objects.filter(pk=pool.pk).update(cooldown_until=until)
    pool.cooldown_until = until


def _live_replica(*, agent: Agent) -> Replica | None:
    """The agent's best live replica: a ready one first, else one still on its way."""
    replicas = list(
        Replica.objects.filter(
            agent=agent, status__in=(ReplicaStatus.READY, ReplicaStatus.LAUNCHING, ReplicaStatus.SYNCING)
        ).order_by("-created_at")[:10]
    )
    ready = [r for r in replicas if r.status == ReplicaStatus.READY and r.instance_id]
    if ready:
        return ready[0]
    waiting = [r for r in replicas if r.status != ReplicaStatus.READY]
    return waiting[0] if waiting else None


class WouldQueue:
    """Dry run: the automatic command the server would have queued (nothing is issued)."""

    pk = ""


def _queue_auto_command(*, agent: Agent, choice: PoolChoice, source: str, reason: str, now: datetime,
                        dry_run: bool = False, termination_event=None):
    """Queue an automatic switch when no command is open and the agent's cooldown allows; else None.
    In dry run nothing is issued: a WouldQueue stands for the command. Either way the automatic switch
    is recorded as a decision."""
    command_expire_stale(agent=agent, now=now)
    if Command.objects.filter(agent=agent, is_open=True).exists():
        return None
    recent = now - timedelta(seconds=settings.POOL_COOLDOWN_SECONDS)
    if Command.objects.filter(agent=agent, source__in=("rebalance", "termination"), created_at__gte=recent).exists():
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
    return command


def _event_get_or_create(*, agent: Agent, instance_id: str, event_type: str, notice_key: str, defaults: dict):
    try:
        with transaction.atomic():
            return TerminationEvent.objects.get_or_create(
                agent=agent, instance_id=instance_id, event_type=event_type, notice_key=notice_key, defaults=defaults
            )
    except IntegrityError:
        # Only reachable without the agent lock; kept so that a race degrades to a repeat, never a 500.
        return TerminationEvent.objects.get(
            agent=agent, instance_id=instance_id, event_type=event_type, notice_key=notice_key
        ), False


def _notice_key(*, agent: Agent, instance_id: str, notice: Notice, now: datetime) -> str:
    if notice.termination_time is not None:
        return _iso(notice.termination_time)
    # No announced time: the notice of this instance seen lately (even if already handled) is the same one.
    open_event = (
        TerminationEvent.objects.filter(
            agent=agent,
            instance_id=instance_id,
            event_type=TerminationEventType.TERMINATION_NOTICE,
            last_seen_at__gte=now - NOTICE_DEDUPE_WINDOW,
        )
        .order_by("-detected_at")
        .values_list("notice_key", flat=True)
        .first()
    )
    return open_event or f"seen:{_iso(notice.detected_at or now)}"


def termination_text(*, agent: Agent, event: TerminationEvent, decision: str, target: str) -> str:
    """The Slack-compatible message of one termination notice."""
    deadline = _iso(event.termination_time) if event.termination_time else "unknown (about 2 minutes)"
    return (
        f":warning: Spot termination notice for agent {agent.hostname or agent.logical_agent_id} ({agent.pk})\n"
        f"Instance: {event.instance_id}\n"
        f"Pool: {event.pool_id or 'unknown'}\n"
        f"Deadline: {deadline}\n"
        f"Decision: {decision}; target: {target}"
    )


def _notify(*, agent: Agent, event: TerminationEvent, text: str) -> None:
    # The outbox row commits with the decision; publishing after commit never fails the request.
    notification_enqueue(kind="termination_notice", text=text, client=agent.client,
                         metadata={"termination_event_id": event.pk, "agent_id": str(agent.pk)})


def _stored_termination(event: TerminationEvent) -> TerminationDecision:
    meta = event.metadata or {}
    return TerminationDecision(
        event=event,
        created=False,
        action=event.action_taken,
        create_emergency_replica=False,
        target_mode=meta.get("target_mode", ""),
        target_pool_id=meta.get("target_pool_id", ""),
        instructions=meta.get("repeat_instructions") or meta.get("instructions", ""),
        replica_id=meta.get("replica_id", ""),
        command_id=meta.get("command_id", ""),
    )


UNKNOWN_INSTANCE_TEXT = "This instance was never registered for this agent; nothing recorded, nothing to do."


def _unknown_instance_termination(*, agent: Agent, instance_id: str) -> TerminationDecision:
    """A notice from an instance this agent never registered (issue 9, item 3): a system event at most,
    no termination event, no change to the agent, and never a replica."""
    instance_unknown_log(agent=agent, instance_id=instance_id, source="termination notice")
    return TerminationDecision(event=TerminationEvent(), created=False, action=NOT_PRIMARY,
                               create_emergency_replica=False, target_mode="", target_pool_id="",
                               instructions=UNKNOWN_INSTANCE_TEXT)


@transaction.atomic
def termination_notice_handle(*, agent: Agent, notice: Notice, now: datetime | None = None) -> TerminationDecision:
    """Record the notice and decide, once per notice per instance (ARCHITECTURE.md §4)."""
    now = now or timezone.now()
    agent = agent_lock(agent_id=agent.pk)
    instance_id = notice.instance_id or agent.instance_id
    if not instance_is_known(agent=agent, instance_id=instance_id):
        return _unknown_instance_termination(agent=agent, instance_id=instance_id)
    key = _notice_key(agent=agent, instance_id=instance_id, notice=notice, now=now)
    is_primary = instance_id == agent.instance_id
    dying_pool_id = agent.current_pool_id if is_primary and agent.current_mode == Mode.SPOT else None
    event, created = _event_get_or_create(
        agent=agent,
        instance_id=instance_id,
        event_type=TerminationEventType.TERMINATION_NOTICE,
        notice_key=key,
        defaults={
            "client_id": agent.client_id,
            "pool_id": dying_pool_id,
            "termination_time": notice.termination_time,
            "detected_at": sample_time(reported=notice.detected_at, now=now),  # never in the future
            "last_seen_at": now,
            "metadata": {"action": notice.action} if notice.action else {},
        },
    )
    if not created:
        TerminationEvent.objects.filter(pk=event.pk).update(last_seen_at=now, notice_count=event.notice_count + 1)
        event.notice_count += 1
        if is_primary:
            Agent.objects.filter(pk=agent.pk).update(last_termination_notice_at=now)
        return _stored_termination(event)

    dying_pool = SpotPool.objects.filter(pk=dying_pool_id).first() if dying_pool_id else None
    decision = _termination_decide(agent=agent, event=event, is_primary=is_primary, dying_pool=dying_pool, now=now)
    event.action_taken = decision.action
    event.status = (
        TerminationEventStatus.RESOLVED if decision.action == PROMOTE_REPLICA else
        TerminationEventStatus.DETECTED if decision.action in (NOTIFY_ONLY, NOT_PRIMARY) else
        # Dry run: nothing was set in motion, nothing will resolve it.
        TerminationEventStatus.DETECTED if event.metadata.get("dry_run") else
        TerminationEventStatus.HANDLING
    )
    if decision.action == PROMOTE_REPLICA:
        event.resolved_at = now
        # replica_promote linked the replica with an UPDATE; this save must not write the old value back.
        event.emergency_replica_id = decision.replica_id
    event.metadata = {
        **event.metadata,
        "target_mode": decision.target_mode,
        "target_pool_id": decision.target_pool_id,
        "instructions": decision.instructions,
        "replica_id": decision.replica_id,
        "command_id": decision.command_id,
        "repeat_instructions": "Notice already handled: " + decision.instructions,
    }
    event.save()
    decision.event = event
    dry = bool(event.metadata.get("dry_run"))
    decision_record(agent=agent, kind=DecisionKind.TERMINATION, action=decision.action, dry_run=dry,
                    reason=event.metadata.get("reason", ""), instance_id=instance_id, from_pool_id=dying_pool_id,
                    target_mode=decision.target_mode, target_pool_id=decision.target_pool_id,
                    deadline=event.termination_time, termination_event=event,
                    replica_id=decision.replica_id or None, command_id=decision.command_id or None)

    if is_primary:
        agent.last_termination_notice_at = now
        # Not `terminating` when a promotion already moved the agent onto a healthy instance.
        if decision.action != PROMOTE_REPLICA:
            agent_status_transition(agent=agent, to=AgentStatus.TERMINATING, save=False)
            # The instance stops costing money at its termination time, whoever takes over (docs in README).
            instance_primary_end(agent=agent, at=event.termination_time or (event.detected_at + NOTICE_LEAD_TIME))
        agent.save()
    system_event_log(
        agent=agent,
        event_type="termination_notice",
        severity=Severity.WARNING,
        message=f"Termination notice for {instance_id} (deadline "
        f"{_iso(event.termination_time) if event.termination_time else 'unknown'}): {decision.action}",
        metadata={"termination_event_id": event.pk, "decision": decision.action,
                  "target_pool_id": decision.target_pool_id},
    )
    _notify(agent=agent, event=event, text=termination_text(agent=agent, event=event, decision=decision.action,
                                  target=decision.target_pool_id or decision.target_mode))
    return decision


def _termination_decide(*, agent: Agent, event: TerminationEvent, is_primary: bool, dying_pool, now) -> TerminationDecision:
    dry = client_dry_run(agent=agent)

    def decided(action, *, create=False, mode="", pool_id="", instructions="", reason="", replica_id="", command_id=""):
        told = action in (CREATE_REPLICA, QUEUE_SWITCH)  # the only answers the agent acts on
        event.metadata = {**event.metadata, "reason": reason, "dry_run": dry and told}
        if dry and told:
            instructions = f"Dry run: nothing to do (the server would have said: {instructions})"
        return TerminationDecision(event=event, created=True, action=action, create_emergency_replica=create and not dry,
                                   target_mode=mode, target_pool_id=pool_id, instructions=instructions,
                                   replica_id=replica_id, command_id=command_id)

    if not is_primary:
        return decided(NOT_PRIMARY, instructions="This instance is no longer the agent's primary; nothing to do.",
                       reason=f"agent now runs on {agent.instance_id}")

    _pool_cooldown(pool=dying_pool, now=now)
    replica = _live_replica(agent=agent)
    if replica is not None and replica.status == ReplicaStatus.READY:
        from agents.services.replicas import replica_promote

        # A promotion only moves the server's record of the primary: the agent is told nothing either way.
        replica_promote(agent=agent, replica_id=replica.pk, now=now)
        agent.refresh_from_db()
        return decided(PROMOTE_REPLICA, mode=Mode.SPOT if replica.pool_id else Mode.ONDEMAND,
                       pool_id=replica.pool_id or "", replica_id=str(replica.pk),
                       instructions=f"Replica {replica.instance_id} promoted; do not launch another replica.",
                       reason=f"ready {replica.replica_type} replica {replica.instance_id} exists")
    if replica is not None:
        return decided(WAIT_FOR_REPLICA, mode=Mode.SPOT if replica.pool_id else Mode.ONDEMAND,
                       pool_id=replica.pool_id or "", replica_id=str(replica.pk),
                       instructions=f"Replica {replica.instance_id or replica.pk} is {replica.status}; "
                       "do not launch another. Promote it when ready.",
                       reason=f"{replica.replica_type} replica already {replica.status}")

    choice = pool_failover_select(agent=agent, dying_pool=dying_pool, now=now)
    pool_id = choice.pool.pk if choice.pool else ""
    decision_record(agent=agent, kind=DecisionKind.FAILOVER_POOL, action=f"choose_{choice.target_mode}",
                    dry_run=dry, reason=choice.reason, instance_id=event.instance_id,
                    from_pool_id=dying_pool.pk if dying_pool else "", target_mode=choice.target_mode,
                    target_pool=choice.pool, deadline=event.termination_time, termination_event=event)
    if settings.TERMINATION_REPLICA_AUTO_CREATE:
        return decided(CREATE_REPLICA, create=True, mode=choice.target_mode, pool_id=pool_id,
                       instructions="Create emergency replica and prepare for failover", reason=choice.reason)
    if agent.auto_switch_enabled:
        command = _queue_auto_command(agent=agent, choice=choice, source="termination", now=now, dry_run=dry,
                                      termination_event=event,
                                      reason=f"termination notice {event.pk}: {choice.reason}")
        if command is not None:
            return decided(QUEUE_SWITCH, mode=choice.target_mode, pool_id=pool_id, command_id=str(command.pk),
                           instructions="Emergency replicas are disabled (TERMINATION_REPLICA_AUTO_CREATE=false); "
                           f"a failover switch to {pool_id or 'on-demand'} is queued.", reason=choice.reason)
    return decided(NOTIFY_ONLY, mode=choice.target_mode, pool_id=pool_id,
                   instructions="Emergency replicas are disabled (TERMINATION_REPLICA_AUTO_CREATE=false); no replica "
                   "and no switch: the instance will be lost, operators are notified.",
                   reason="replica auto-create off" + ("" if agent.auto_switch_enabled else ", auto switch off")
                   + " or a command is already open")


def _rebalance_event(*, agent: Agent, instance_id: str, detected_at: datetime, now: datetime, pool):
    """The open recommendation for this instance seen within the window, or a new one."""
    existing = (
        TerminationEvent.objects.filter(
            agent=agent,
            instance_id=instance_id,
            event_type=TerminationEventType.REBALANCE_RECOMMENDATION,
            status__in=OPEN_EVENT,
            last_seen_at__gte=now - REBALANCE_DEDUPE_WINDOW,
        )
        .order_by("-detected_at")
        .first()
    )
    if existing is not None:
        return existing, False
    return _event_get_or_create(
        agent=agent,
        instance_id=instance_id,
        event_type=TerminationEventType.REBALANCE_RECOMMENDATION,
        notice_key=f"seen:{_iso(detected_at)}",
        defaults={"client_id": agent.client_id, "pool": pool, "detected_at": detected_at, "last_seen_at": now},
    )


@transaction.atomic
def rebalance_recommendation_handle(*, agent: Agent, notice: Notice, now: datetime | None = None) -> RebalanceDecision:
    """Advisory: record it (a signal the risk analysis reads), and recommend a switch only to a clearly
    safer pool; queue it only with auto switch on, no open command and the cooldown allowing."""
    now = now or timezone.now()
    agent = agent_lock(agent_id=agent.pk)
    instance_id = notice.instance_id or agent.instance_id
    if not instance_is_known(agent=agent, instance_id=instance_id):
        instance_unknown_log(agent=agent, instance_id=instance_id, source="rebalance recommendation")
        return RebalanceDecision(event=TerminationEvent(), created=False, action=MONITOR, target_mode="",
                                 target_pool_id="", reason=UNKNOWN_INSTANCE_TEXT)
    is_primary = instance_id == agent.instance_id
    pool = agent.current_pool if is_primary and agent.current_mode == Mode.SPOT else None
    event, created = _rebalance_event(agent=agent, instance_id=instance_id,
                                      detected_at=sample_time(reported=notice.detected_at, now=now),
                                      now=now, pool=pool)
    if is_primary:
        Agent.objects.filter(pk=agent.pk).update(last_rebalance_recommendation_at=now)
        agent.last_rebalance_recommendation_at = now
    if not created:
        TerminationEvent.objects.filter(pk=event.pk).update(last_seen_at=now, notice_count=event.notice_count + 1)
        meta = event.metadata or {}
        return RebalanceDecision(event=event, created=False, action=meta.get("action", MONITOR),
                                 target_mode=meta.get("target_mode", ""), target_pool_id=meta.get("target_pool_id", ""),
                                 reason=meta.get("reason", ""), command_id=meta.get("command_id", ""))

    dry = client_dry_run(agent=agent)
    action, target_mode, target_pool_id, reason, command = _rebalance_decide(
        agent=agent, event=event, is_primary=is_primary, pool=pool, now=now, dry_run=dry
    )
    queued = command is not None and not dry
    event.action_taken = f"{action}: command queued" if queued else (
        f"{action}: command would be queued (dry run)" if command is not None else action)
    event.status = TerminationEventStatus.HANDLING if queued else TerminationEventStatus.DETECTED
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
    return RebalanceDecision(event=event, created=True, action=action, target_mode=target_mode,
                             target_pool_id=target_pool_id, reason=reason,
                             command_id=str(command.pk) if command else "")


def _rebalance_decide(*, agent: Agent, event, is_primary: bool, pool, now, dry_run: bool = False):
    current_mode = agent.current_mode or Mode.UNKNOWN
    if not is_primary:
        return MONITOR, current_mode, "", f"instance is no longer the primary (agent runs on {agent.instance_id})", None
    if agent.current_mode != Mode.SPOT:
        return MONITOR, current_mode, "", "instance is not on spot: nothing to rebalance", None
    # The recommendation itself is a risk signal: for this decision the current pool counts as at least
    # `caution`. The pool's stored verdict is written only by the risk analysis (one writer per fact),
    # which counts this recorded recommendation among its inputs (risk.REBALANCE_FLOOR).
    current_bucket = RISK_BUCKET.get(pool.risk_recommendation, 1) if pool is not None else 1
    raised_bucket = max(current_bucket, RISK_BUCKET[RiskRecommendation.CAUTION])
    exclude = (pool.pk,) if pool is not None else ()
    choice = pool_select(instance_type=agent.instance_type, region=agent.region, exclude_pool_ids=exclude, now=now,
                         client_id=agent.client_id)
    if choice.pool is None or RISK_BUCKET.get(choice.pool.risk_recommendation, 1) >= raised_bucket:
        return MONITOR, Mode.SPOT, pool.pk if pool else "", (
            "no clearly safer pool than the current one: keep monitoring"
        ), None
    reason = f"Current pool has elevated interruption risk; {choice.pool.pk}: {choice.reason}"
    command = None
    if agent.auto_switch_enabled:
        command = _queue_auto_command(agent=agent, choice=choice, source="rebalance", now=now,
                                      dry_run=dry_run, termination_event=event,
                                      reason=f"rebalance recommendation {event.pk}: {reason}")
    return SWITCH, Mode.SPOT, choice.pool.pk, reason, command


# The termination event's own states (ARCHITECTURE.md §3): detected -> handling -> resolved | failed.
EVENT_ALLOWED: dict[str, set[str]] = {
    TerminationEventStatus.DETECTED: {TerminationEventStatus.HANDLING, TerminationEventStatus.RESOLVED,
                                      TerminationEventStatus.FAILED},
    TerminationEventStatus.HANDLING: {TerminationEventStatus.RESOLVED, TerminationEventStatus.FAILED},
    # Staff may correct a final outcome (resolved <-> failed), never reopen it.
    TerminationEventStatus.RESOLVED: {TerminationEventStatus.FAILED},
    TerminationEventStatus.FAILED: {TerminationEventStatus.RESOLVED},
}
FINAL_EVENT_STATUSES = (TerminationEventStatus.RESOLVED, TerminationEventStatus.FAILED)


def termination_event_can_change(*, current: str, to: str) -> bool:
    return current == to or to in EVENT_ALLOWED.get(current, set())


@transaction.atomic
def termination_events_close(*, events, status: str, action_taken: str, now: datetime | None = None) -> int:
    """Close open events (staff's bulk action): set the outcome, when, and what was done."""
    if status not in FINAL_EVENT_STATUSES:
        raise ValueError(f"{status} is not a final status")
    now = now or timezone.now()
    return (
        TerminationEvent.objects.filter(pk__in=[e.pk for e in events], status__in=OPEN_EVENT)
        .update(status=status, resolved_at=now, action_taken=action_taken[:100])
    )
