"""The agent's primary instance (ARCHITECTURE.md §3): exactly one per agent, moved only here."""
from datetime import datetime

from django.db.models import F
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


def instance_seen(*, agent: Agent, instance_id: str, at: datetime | None = None, attrs: dict | None = None) -> Instance:
    """Record a non-primary instance that is still running (it costs money, staff should see it)."""
    at = at or timezone.now()
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


def instance_primary_end(*, agent: Agent, at: datetime) -> int:
    """The agent's primary instance stops costing money at `at` (a notice's termination time, a
    goodbye heartbeat): its interval ends there, or earlier if it already ended. It stays primary."""
    return Instance.objects.filter(agent=agent, is_primary=True).update(ended_at=_ended_by(at))


def instance_primary_resume(*, agent: Agent) -> int:
    """The agent's primary instance, ended by a goodbye or by the stale sweep, speaks again: its
    interval is open again (the instance evidently kept running)."""
    return Instance.objects.filter(agent=agent, is_primary=True, ended_at__isnull=False).update(ended_at=None)
