"""Termination event rows (docs/ARCHITECTURE.md §3, §4): one row per notice or recommendation, found or
created under the agent lock, linked to the emergency replica that answers it, resolved by its
promotion, or closed by staff. Status moves go through agents/states.py. The decision taken on a
notice is agents/services/termination.py; on a recommendation, agents/services/rebalance.py."""
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from agents.models import Agent, Replica, TerminationEvent, TerminationEventStatus, TerminationEventType
from agents.states import EVENT_FINAL, EVENT_OPEN, termination_event_transition, termination_events_move

# A notice without a termination time, seen again within this window, is the same notice.
NOTICE_DEDUPE_WINDOW = timedelta(minutes=10)
# A recommendation seen again within this window is the same recommendation.
REBALANCE_DEDUPE_WINDOW = timedelta(hours=1)
UNKNOWN_INSTANCE_TEXT = "This instance was never registered for this agent; nothing recorded, nothing to do."


@dataclass
class Notice:
    instance_id: str = ""
    termination_time: datetime | None = None  # `termination_time` (v4) or `time` (the request document)
    action: str = ""
    detected_at: datetime | None = None


def iso_utc(value: datetime) -> str:
    return value.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def termination_event_get_or_create(*, agent: Agent, instance_id: str, event_type: str, notice_key: str,
                                    defaults: dict) -> tuple[TerminationEvent, bool]:
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


def termination_notice_key(*, notice: Notice, now: datetime) -> str:
    """What identifies a new notice: its announced termination time, else its first sighting (a notice
    without a time seen lately is found by termination_notice_find instead)."""
    if notice.termination_time is not None:
        return iso_utc(notice.termination_time)
    return f"seen:{iso_utc(notice.detected_at or now)}"


def termination_notice_find(*, agent_id, instance_id: str, notice: Notice, now: datetime) -> TerminationEvent | None:
    """The event of this notice if it was recorded: by its announced termination time; without one, the
    notice of this instance seen lately (even if already handled). One indexed query; it needs no lock
    (the row is written once, with its decision, in the transaction that decided)."""
    if notice.termination_time is not None:
        return termination_notice_by_key(agent_id=agent_id, instance_id=instance_id,
                                         notice_key=iso_utc(notice.termination_time))
    return (
        TerminationEvent.objects.filter(agent_id=agent_id, instance_id=instance_id,
                                        event_type=TerminationEventType.TERMINATION_NOTICE,
                                        last_seen_at__gte=now - NOTICE_DEDUPE_WINDOW)
        .order_by("-detected_at").first()
    )


# What a repeat's answer and its count need (the other fields are deferred).
_FOUND_COLUMNS = ("id", "instance_id", "action_taken", "notice_count", "metadata")


def termination_notice_by_key(*, agent_id, instance_id: str, notice_key: str) -> TerminationEvent | None:
    """The notice by its unique key, with the columns a repeat needs (every post of a notice, about 24
    per notice, starts here)."""
    return TerminationEvent.objects.filter(
        agent_id=agent_id, instance_id=instance_id, event_type=TerminationEventType.TERMINATION_NOTICE,
        notice_key=notice_key).only(*_FOUND_COLUMNS).first()


def termination_notice_insert(*, event: TerminationEvent) -> bool:
    """Insert a new notice's row. False when it was recorded since the caller looked (the unique key: a
    simultaneous post that decided first), so that a race degrades to a repeat, never a 500."""
    try:
        with transaction.atomic():
            event.save(force_insert=True)
    except IntegrityError:
        event.pk = None
        return False
    return True


def termination_notice_seen_again(*, agent_id, event: TerminationEvent, now: datetime) -> None:
    """A repeat of a notice: the agent's `last_termination_notice_at` when the instance is still its
    primary (the row says so), then one more sighting of the event; agent row first, as every lock here."""
    Agent.objects.filter(pk=agent_id, instance_id=event.instance_id).update(last_termination_notice_at=now)
    TerminationEvent.objects.filter(pk=event.pk).update(last_seen_at=now, notice_count=F("notice_count") + 1)
    event.notice_count += 1
    event.last_seen_at = now


def termination_event_seen_again(*, event: TerminationEvent, now: datetime) -> None:
    """A repeat of a known notice or recommendation: one more sighting, nothing else (counted in the
    database, so it needs no lock)."""
    TerminationEvent.objects.filter(pk=event.pk).update(last_seen_at=now, notice_count=F("notice_count") + 1)
    event.notice_count += 1
    event.last_seen_at = now


def rebalance_event_get_or_create(*, agent: Agent, instance_id: str, detected_at: datetime, now: datetime, pool):
    """The open recommendation for this instance seen within the window, or a new one."""
    existing = (
        TerminationEvent.objects.filter(
            agent=agent,
            instance_id=instance_id,
            event_type=TerminationEventType.REBALANCE_RECOMMENDATION,
            status__in=EVENT_OPEN,
            last_seen_at__gte=now - REBALANCE_DEDUPE_WINDOW,
        )
        .order_by("-detected_at")
        .first()
    )
    if existing is not None:
        return existing, False
    return termination_event_get_or_create(
        agent=agent,
        instance_id=instance_id,
        event_type=TerminationEventType.REBALANCE_RECOMMENDATION,
        notice_key=f"seen:{iso_utc(detected_at)}",
        defaults={"client_id": agent.client_id, "pool": pool, "detected_at": detected_at, "last_seen_at": now},
    )


def termination_notice_link_replica(*, agent: Agent, replica: Replica) -> TerminationEvent | None:
    """An emergency replica registered: it answers the open notice of its parent instance, which is now
    being handled. The caller holds the agent row lock."""
    qs = TerminationEvent.objects.filter(
        agent=agent,
        event_type=TerminationEventType.TERMINATION_NOTICE,
        status__in=EVENT_OPEN,
        emergency_replica__isnull=True,
    )
    if replica.parent_instance_id:
        qs = qs.filter(instance_id=replica.parent_instance_id)
    event = qs.order_by("-detected_at").first()
    if event is None:
        return None
    replica.termination_event = event
    replica.save(update_fields=["termination_event"])
    event.emergency_replica = replica
    termination_event_transition(event=event, to=TerminationEventStatus.HANDLING, save=False)
    event.save(update_fields=["emergency_replica", "status"])
    return event


def termination_notices_resolve_by_promotion(*, agent: Agent, old_instance_id: str, replica: Replica,
                                             now: datetime) -> int:
    """A replica was promoted over `old_instance_id`: every open notice of that instance is resolved
    by it (one UPDATE, on the table's sources of `resolved`)."""
    return termination_events_move(
        queryset=TerminationEvent.objects.filter(
            agent=agent, instance_id=old_instance_id, event_type=TerminationEventType.TERMINATION_NOTICE
        ),
        to=TerminationEventStatus.RESOLVED, now=now, action_taken="replica_promoted", emergency_replica=replica,
    )


@transaction.atomic
def termination_events_close(*, events, status: str, action_taken: str, now: datetime | None = None) -> int:
    """Close open events (staff's bulk action): set the outcome, when, and what was done."""
    if status not in EVENT_FINAL:
        raise ValueError(f"{status} is not a final status")
    return termination_events_move(
        queryset=TerminationEvent.objects.filter(pk__in=[e.pk for e in events]),
        to=status, now=now or timezone.now(), action_taken=action_taken[:100],
    )
