"""The agent's primary instance (docs/ARCHITECTURE.md §3): exactly one per agent, moved only here."""
from datetime import datetime


from django.db.models import Case, F, Value, When
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from agents.models import Agent, Instance, InstanceState


def _ended_by(at: datetime):
    """The earlier of the stored end and `at`: an instance that already stopped costing money (its
    notice's termination time, its agent's last sign of life) keeps that earlier end."""
    return Coalesce(Least(F("ended_at"), at), at)


def instance_make_primary(
    *,
    agent: Agent,
    instance_id: str,
    at: datetime | None = None,
    attrs: dict | None = None,
    old_state: str = InstanceState.REPLACED,
) -> Instance:
    """Make `instance_id` the agent's primary; the previous primary becomes `old_state`.

    The caller holds the agent row lock (agents.locks.agent_lock). The agent's denormalised
    instance columns are updated in memory and saved by the caller's agent.save()."""
    at = at or timezone.now()
    attrs = {k: v for k, v in (attrs or {}).items() if v not in (None, "")}
    Instance.objects.filter(agent=agent, is_primary=True).exclude(instance_id=instance_id).update(
        is_primary=None, state=old_state, ended_at=_ended_by(at)
    )
    instance = Instance.objects.filter(agent=agent, instance_id=instance_id).first()
    if instance is None:
        instance = Instance(agent=agent, client_id=agent.client_id, instance_id=instance_id, started_at=at)
    elif instance.is_primary is None and instance.ended_at is not None and instance.ended_at <= instance.started_at:
        # Seen before only as a non-primary (a replica, a restarted old instance): it earns from now on,
        # not from when it was first seen running beside the primary.
        instance.started_at = at
    for key, value in attrs.items():
        setattr(instance, key, value)
    instance.state = InstanceState.PRIMARY
    instance.is_primary = True
    instance.ended_at = None
    instance.last_seen_at = at
    instance.save()

    agent.instance_id = instance_id
    for key in ("instance_type", "region", "az", "ami_id"):
        if attrs.get(key):
            setattr(agent, key, attrs[key])
    if attrs.get("mode"):
        agent.current_mode = attrs["mode"]
    if "pool" in attrs or attrs.get("mode") == "ondemand":
        agent.current_pool = attrs.get("pool")
    return instance


def instance_seen(
    *, agent: Agent, instance_id: str, at: datetime | None = None, attrs: dict | None = None, registered: bool = False
) -> Instance | None:
    """A non-primary instance of the agent is still running (it costs money, staff should see it).

    Only a registration (`registered=True`: the agent's register call) may add the row. A heartbeat,
    pricing report or notice naming an instance never registered for this agent adds nothing and
    changes nothing: at most one `unknown_instance` system event per instance and hour. Returns the
    row, or None for such a phantom."""
    at = at or timezone.now()
    if not registered:
        if Instance.objects.filter(agent=agent, instance_id=instance_id).update(last_seen_at=at):
            return Instance(agent=agent, instance_id=instance_id, last_seen_at=at)
        instance_unknown_log(agent=agent, instance_id=instance_id, source="heartbeat")
        return None
    instance, created = Instance.objects.get_or_create(
        agent=agent,
        instance_id=instance_id,
        defaults={
            "client_id": agent.client_id,
            "state": InstanceState.REPLACED,
            "is_primary": None,
            "started_at": at,
            "ended_at": at,
            "last_seen_at": at,
            **{k: v for k, v in (attrs or {}).items() if v not in (None, "")},
        },
    )
    if not created:
        Instance.objects.filter(pk=instance.pk).update(last_seen_at=at)
    return instance


def instance_is_known(*, agent: Agent, instance_id: str) -> bool:
    return instance_id == agent.instance_id or Instance.objects.filter(agent=agent, instance_id=instance_id).exists()


# A phantom that keeps talking is logged once per this many seconds per (agent, instance).
UNKNOWN_INSTANCE_LOG_EVERY = 3600


def instance_unknown_log(*, agent: Agent, instance_id: str, source: str) -> bool:
    """Record (deduplicated through the cache, so a chatty phantom cannot flood the table) that a call
    named an instance this agent never registered. Returns whether an event was written."""
    from django.core.cache import cache

    from agents.models import Severity
    from agents.services.events import system_event_log

    key = f"unknown-instance:{agent.pk}:{instance_id[:64]}"
    try:
        first = cache.add(key, 1, timeout=UNKNOWN_INSTANCE_LOG_EVERY)
    except Exception:  # a cache outage must not fail the agent's call; log nothing rather than flood
        first = False
    if not first:
        return False
    system_event_log(
        agent=agent,
        event_type="unknown_instance",
        severity=Severity.WARNING,
        message=f"A {source} named instance {instance_id[:64]}, which this agent never registered; ignored",
        metadata={"instance_id": instance_id[:64], "source": source},
    )
    return True


def instance_primary_end(*, agent: Agent, at: datetime) -> int:
    """The agent's primary instance stops costing money at `at` (a notice's termination time, a
    goodbye heartbeat): its interval ends there, or earlier if it already ended. It stays primary."""
    return Instance.objects.filter(agent=agent, is_primary=True).update(
        ended_at=Case(When(ended_at__lt=at, then=F("ended_at")), default=Value(at)))


def instance_primary_resume(*, agent: Agent) -> int:
    """The agent's primary instance, ended by a goodbye or by the stale sweep, speaks again: its
    interval is open again (the instance evidently kept running)."""
    return Instance.objects.filter(agent=agent, is_primary=True, ended_at__isnull=False).update(ended_at=None)
