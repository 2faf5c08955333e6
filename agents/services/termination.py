"""What happens on a spot termination notice (docs/ARCHITECTURE.md §4): the agent posts it every 5 s
while AWS shows it. One TerminationEvent row per notice (agents/services/termination_events.py); the
decision is taken once, under the agent row lock, and written with that row in one INSERT, so that ten
simultaneous posts produce one `create_emergency_replica: true` (the unique key turns a post that lost
the race into a repeat). Repeats find the row without a lock and answer the stored decision with
`create_emergency_replica: false`. The lifecycle goes on in termination_events.py: the emergency
replica links to the notice, its promotion resolves it.

The request path makes a few indexed queries and no network call: the webhook goes out from the
notification outbox after commit. What a notice costs: docs/PERFORMANCE.md ("Termination notices")."""
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from agents.services.market import sample_time
from agents.locks import agent_lock
from agents.models import (
    Agent,
    AgentStatus,
    CommandSource,
    DecisionKind,
    Mode,
    Replica,
    ReplicaStatus,
    Severity,
    TerminationEvent,
    TerminationEventStatus,
    TerminationEventType,
)
from agents.services.commands import command_queue_automatic
from agents.services.decisions import (
    DRY_RUN_COLUMN,
    client_dry_run,
    client_dry_run_column,
    decision_build,
    decisions_record,
)
from agents.services.events import system_event_log
from agents.services.instances import instance_is_known, instance_primary_end, instance_unknown_log
from agents.services.pool_policy import PoolChoice, pool_cooldown_start, pool_for_failover
from agents.services.replicas import replica_promote
from agents.services.termination_events import (
    UNKNOWN_INSTANCE_TEXT,
    Notice,
    iso_utc,
    termination_notice_by_key,
    termination_notice_find,
    termination_notice_insert,
    termination_notice_key,
    termination_notice_seen_again,
)
from agents.states import agent_status_transition, termination_event_transition
from spotbackend.exceptions import NotFoundError
from notifications.http import slack_escape
from notifications.models import EventType
from notifications.services import notification_enqueue, webhook_event_emit
from spotbackend.metrics import notice_handler

# AWS reclaims a spot instance two minutes after the notice: the end when a notice names no time.
NOTICE_LEAD_TIME = timedelta(minutes=2)

# Decision names stored in TerminationEvent.action_taken.
CREATE_REPLICA = "create_emergency_replica"
PROMOTE_REPLICA = "promote_replica"
WAIT_FOR_REPLICA = "wait_for_replica"
QUEUE_SWITCH = "queue_failover_switch"
NOTIFY_ONLY = "notify_only"
NOT_PRIMARY = "ignored_not_primary"


@dataclass
class TerminationDecision:
    event: TerminationEvent
    action: str
    create_emergency_replica: bool
    target_mode: str
    target_pool_id: str
    instructions: str
    replica_id: str = ""
    command_id: str = ""
    # The failover pool choice, when one was made (stored as its own decision); not part of the answer.
    failover: PoolChoice | None = None
    failover_recorded: bool = False


LIVE_FOR_NOTICE = (ReplicaStatus.READY, ReplicaStatus.LAUNCHING, ReplicaStatus.SYNCING)
LIVE_REPLICAS_COLUMN = "live_replicas"


def _live_replicas_column() -> Coalesce:
    """How many live replicas the agent has, read with its lock (usually none: no second query)."""
    live = Replica.objects.filter(agent=OuterRef("pk"), status__in=LIVE_FOR_NOTICE).order_by()
    return Coalesce(Subquery(live.values("agent").annotate(n=Count("pk")).values("n")[:1]), 0)


def _live_replica(*, agent: Agent) -> Replica | None:
    """The agent's best live replica: a ready one first, else one still on its way."""
    if getattr(agent, LIVE_REPLICAS_COLUMN, 1) == 0:
        return None  # counted with the lock
    replicas = list(
        Replica.objects.filter(
            agent=agent, status__in=LIVE_FOR_NOTICE
        ).order_by("-created_at")[:10]
    )
    ready = [r for r in replicas if r.status == ReplicaStatus.READY and r.instance_id]
    if ready:
        return ready[0]
    waiting = [r for r in replicas if r.status != ReplicaStatus.READY]
    return waiting[0] if waiting else None


def termination_text(*, agent: Agent, event: TerminationEvent, decision: str, target: str) -> str:
    """The Slack-compatible message of one termination notice. Everything an agent reported (host name,
    ids) is escaped: no mention, link or extra line can be smuggled into the operator's channel."""
    deadline = iso_utc(event.termination_time) if event.termination_time else "unknown (about 2 minutes)"
    e = slack_escape
    return (
        f":warning: Spot termination notice for agent {e(agent.hostname or agent.logical_agent_id)} ({agent.pk})\n"
        f"Instance: {e(event.instance_id)}\n"
        f"Pool: {e(event.pool_id or 'unknown')}\n"
        f"Deadline: {deadline}\n"
        f"Decision: {e(decision)}; target: {e(target)}"
    )


def _notify(*, agent: Agent, event: TerminationEvent, text: str, decision: str = "", target: str = "") -> None:
    # The outbox rows commit with the decision; publishing after commit never fails the request.
    notification_enqueue(kind="termination_notice", text=text, client_id=agent.client_id,
                         metadata={"termination_event_id": event.pk, "agent_id": str(agent.pk)})
    webhook_event_emit(client_id=agent.client_id, event_type=EventType.TERMINATION_NOTICE, data={
        "agent_id": str(agent.pk), "hostname": agent.hostname, "instance_id": event.instance_id,
        "pool_id": event.pool_id or "", "termination_time": iso_utc(event.termination_time)
        if event.termination_time else None, "decision": decision, "target": target,
        "termination_event_id": event.pk,
    })



REPEAT_PREFIX = "Notice already handled: "
# The decision's keys in TerminationEvent.metadata, written once by termination_notice_handle and
# read back for every repeat; nothing else reads them.
DECISION_KEYS = ("target_mode", "target_pool_id", "instructions", "replica_id", "command_id")


def _decision_metadata(decision: TerminationDecision) -> dict:
    return {key: getattr(decision, key) for key in DECISION_KEYS}


def _stored_termination(event: TerminationEvent) -> TerminationDecision:
    """The answer to a repeat: the stored decision, nothing new to do. Rows written before the repeat
    text was derived here carry it precomputed (`repeat_instructions`, the same text)."""
    meta = event.metadata or {}
    stored = {key: meta.get(key, "") for key in DECISION_KEYS}
    first = stored["instructions"]
    stored["instructions"] = meta.get("repeat_instructions") or (REPEAT_PREFIX + first if first else "")
    return TerminationDecision(event=event, action=event.action_taken, create_emergency_replica=False, **stored)


def _unknown_instance_termination(*, agent: Agent, instance_id: str) -> TerminationDecision:
    """A notice from an instance this agent never registered (issue 9, item 3): a system event at most,
    no termination event, no change to the agent, and never a replica."""
    instance_unknown_log(agent=agent, instance_id=instance_id, source="termination notice")
    return TerminationDecision(event=TerminationEvent(), action=NOT_PRIMARY,
                               create_emergency_replica=False, target_mode="", target_pool_id="",
                               instructions=UNKNOWN_INSTANCE_TEXT)


@notice_handler("termination_notice")
def termination_notice_handle(*, agent_id, notice: Notice, now: datetime | None = None) -> TerminationDecision:
    """Record the notice and decide, once per notice per instance (docs/ARCHITECTURE.md §4).

    A repeat (the agent posts every 5 s while AWS shows the notice) takes no lock: its row was written
    once, with the decision, by the transaction that decided, so finding it is enough to answer. A first
    post decides under the agent row lock and writes the notice's row with its decision in one INSERT."""
    now = now or timezone.now()
    if notice.instance_id:
        event = termination_notice_find(agent_id=agent_id, instance_id=notice.instance_id, notice=notice, now=now)
        if event is not None:
            with transaction.atomic():
                return _termination_seen_again(agent_id=agent_id, event=event, now=now)
    return _termination_first(agent_id=agent_id, notice=notice, now=now)


def _termination_seen_again(*, agent_id, event: TerminationEvent, now: datetime) -> TerminationDecision:
    """A repeat: one more sighting and the stored answer."""
    termination_notice_seen_again(agent_id=agent_id, event=event, now=now)
    return _stored_termination(event)


class _AlreadyRecorded(Exception):
    """A simultaneous post recorded this notice first (before this one took the lock)."""


@transaction.atomic
def _termination_first(*, agent_id, notice: Notice, now: datetime) -> TerminationDecision:
    try:
        agent = agent_lock(agent_id=agent_id, **{DRY_RUN_COLUMN: client_dry_run_column(),
                                                 LIVE_REPLICAS_COLUMN: _live_replicas_column()})
    except Agent.DoesNotExist:
        raise NotFoundError("Agent not found.") from None
    instance_id = notice.instance_id or agent.instance_id
    if not instance_is_known(agent=agent, instance_id=instance_id):
        return _unknown_instance_termination(agent=agent, instance_id=instance_id)
    if notice.termination_time is None or not notice.instance_id:
        # Not looked up yet, or found by recency, which only the lock makes final.
        event = termination_notice_find(agent_id=agent.pk, instance_id=instance_id, notice=notice, now=now)
        if event is not None:
            return _termination_seen_again(agent_id=agent.pk, event=event, now=now)
    is_primary = instance_id == agent.instance_id
    dying_pool_id = agent.current_pool_id if is_primary and agent.current_mode == Mode.SPOT else None
    event = TerminationEvent(
        agent=agent,
        client_id=agent.client_id,
        instance_id=instance_id,
        event_type=TerminationEventType.TERMINATION_NOTICE,
        notice_key=termination_notice_key(notice=notice, now=now),
        pool_id=dying_pool_id,
        termination_time=notice.termination_time,
        detected_at=sample_time(reported=notice.detected_at, now=now),  # never in the future
        last_seen_at=now,
        metadata={"action": notice.action} if notice.action else {},
    )

    def record():
        """Insert the row now (before a decision's effect that refers to it)."""
        if event.pk is None and not termination_notice_insert(event=event):
            raise _AlreadyRecorded

    try:
        decision = _termination_decide(agent=agent, event=event, is_primary=is_primary, dying_pool_id=dying_pool_id,
                                       now=now, record=record)
        inserted_early = event.pk is not None
        event.action_taken = decision.action
        to = (
            TerminationEventStatus.RESOLVED if decision.action == PROMOTE_REPLICA else
            TerminationEventStatus.DETECTED if decision.action in (NOTIFY_ONLY, NOT_PRIMARY) else
            # Dry run: nothing was set in motion, nothing will resolve it.
            TerminationEventStatus.DETECTED if event.metadata.get("dry_run") else
            TerminationEventStatus.HANDLING
        )
        # replica_promote already resolved the row with an UPDATE: the in-memory copy follows it.
        termination_event_transition(event=event, to=to, now=now, save=False)
        if decision.action == PROMOTE_REPLICA:
            # replica_promote linked the replica with an UPDATE; this save must not write the old value back.
            event.emergency_replica_id = decision.replica_id
        event.metadata = {**event.metadata, **_decision_metadata(decision)}
        if inserted_early:
            event.save()
        else:
            record()  # the usual case: the row is written once, decision included
    except _AlreadyRecorded:
        # Nothing was written (record() runs before any effect): answer as the repeat this is.
        event = termination_notice_by_key(agent_id=agent.pk, instance_id=instance_id, notice_key=event.notice_key)
        return _termination_seen_again(agent_id=agent.pk, event=event, now=now)
    decision.event = event
    dry = bool(event.metadata.get("dry_run"))
    choice = decision.failover
    if is_primary:
        # The dying pool's row was read with the failover candidates when a pool was chosen.
        capped = choice.capped_by if choice is not None else None
        pool_cooldown_start(pool_id=dying_pool_id, now=now, known=choice is not None,
                            marked_until=capped.cooldown_until if capped is not None else None)
    decisions = []
    if choice is not None and not decision.failover_recorded:
        decisions.append(_failover_decision(agent=agent, event=event, choice=choice, dry=dry))
    decisions.append(decision_build(
        agent=agent, kind=DecisionKind.TERMINATION, action=decision.action, dry_run=dry,
        reason=event.metadata.get("reason", ""), instance_id=instance_id, from_pool_id=dying_pool_id,
        target_mode=decision.target_mode, target_pool_id=decision.target_pool_id, deadline=event.termination_time,
        termination_event=event, replica_id=decision.replica_id or None, command_id=decision.command_id or None))
    decisions_record(decisions)

    if is_primary:
        agent.last_termination_notice_at = now
        fields = ["last_termination_notice_at", "updated_at"]
        # Not `terminating` when a promotion already moved the agent onto a healthy instance.
        if decision.action != PROMOTE_REPLICA:
            if agent_status_transition(agent=agent, to=AgentStatus.TERMINATING, save=False):
                fields.append("status")
            # The instance stops costing money at its termination time, whoever takes over (docs in README).
            instance_primary_end(agent=agent, at=event.termination_time or (event.detected_at + NOTICE_LEAD_TIME))
        agent.save(update_fields=fields)
    system_event_log(
        agent=agent,
        event_type="termination_notice",
        severity=Severity.WARNING,
        message=f"Termination notice for {instance_id} (deadline "
        f"{iso_utc(event.termination_time) if event.termination_time else 'unknown'}): {decision.action}",
        metadata={"termination_event_id": event.pk, "decision": decision.action,
                  "target_pool_id": decision.target_pool_id},
    )
    _notify(agent=agent, event=event, text=termination_text(agent=agent, event=event, decision=decision.action,
                                  target=decision.target_pool_id or decision.target_mode),
            decision=decision.action, target=decision.target_pool_id or decision.target_mode)
    return decision


def _failover_decision(*, agent: Agent, event: TerminationEvent, choice: PoolChoice, dry: bool):
    """The record of the failover pool choice (docs/ARCHITECTURE.md §4, "Decisions")."""
    return decision_build(
        agent=agent, kind=DecisionKind.FAILOVER_POOL, action=f"choose_{choice.target_mode}", dry_run=dry,
        reason=choice.reason, instance_id=event.instance_id, from_pool_id=event.pool_id or "",
        target_mode=choice.target_mode, target_pool=choice.pool, deadline=event.termination_time,
        termination_event=event)


def _termination_decide(*, agent: Agent, event: TerminationEvent, is_primary: bool, dying_pool_id, now,
                        record) -> TerminationDecision:
    """The decision (the table of docs/ARCHITECTURE.md §4). It only reads, except where an effect refers
    to the notice's row (a promotion, a queued switch): `record()` writes the row first."""
    dry = client_dry_run(agent=agent)

    def decided(action, *, create=False, mode="", pool_id="", instructions="", reason="", replica_id="", command_id="",
                failover=None, failover_recorded=False):
        told = action in (CREATE_REPLICA, QUEUE_SWITCH)  # the only answers the agent acts on
        event.metadata = {**event.metadata, "reason": reason, "dry_run": dry and told}
        if dry and told:
            instructions = f"Dry run: nothing to do (the server would have said: {instructions})"
        return TerminationDecision(event=event, action=action, create_emergency_replica=create and not dry,
                                   target_mode=mode, target_pool_id=pool_id, instructions=instructions,
                                   replica_id=replica_id, command_id=command_id, failover=failover,
                                   failover_recorded=failover_recorded)

    if not is_primary:
        return decided(NOT_PRIMARY, instructions="This instance is no longer the agent's primary; nothing to do.",
                       reason=f"agent now runs on {agent.instance_id}")

    replica = _live_replica(agent=agent)
    if replica is not None and replica.status == ReplicaStatus.READY:
        # A promotion only moves the server's record of the primary: the agent is told nothing either way.
        record()
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

    choice = pool_for_failover(agent=agent, dying_pool_id=dying_pool_id, now=now)
    pool_id = choice.pool.pk if choice.pool else ""
    if settings.TERMINATION_REPLICA_AUTO_CREATE:
        # The usual case: nothing written yet; the failover choice is stored with the verdict.
        return decided(CREATE_REPLICA, create=True, mode=choice.target_mode, pool_id=pool_id, failover=choice,
                       instructions="Create emergency replica and prepare for failover", reason=choice.reason)
    record()
    decision_records = [_failover_decision(agent=agent, event=event, choice=choice, dry=dry)]
    decisions_record(decision_records)  # before the command's own decision, as it was taken
    if agent.auto_switch_enabled:
        command = command_queue_automatic(agent=agent, choice=choice, source=CommandSource.TERMINATION, now=now, dry_run=dry,
                                      termination_event=event,
                                      reason=f"termination notice {event.pk}: {choice.reason}")
        if command is not None:
            return decided(QUEUE_SWITCH, mode=choice.target_mode, pool_id=pool_id, command_id=str(command.pk),
                           failover=choice, failover_recorded=True,
                           instructions="Emergency replicas are disabled (TERMINATION_REPLICA_AUTO_CREATE=false); "
                           f"a failover switch to {pool_id or 'on-demand'} is queued.", reason=choice.reason)
    return decided(NOTIFY_ONLY, mode=choice.target_mode, pool_id=pool_id, failover=choice, failover_recorded=True,
                   instructions="Emergency replicas are disabled (TERMINATION_REPLICA_AUTO_CREATE=false); no replica "
                   "and no switch: the instance will be lost, operators are notified.",
                   reason="replica auto-create off" + ("" if agent.auto_switch_enabled else ", auto switch off")
                   + " or a command is already open")
