"""Reads the API needs, each a fixed, small number of queries."""
import uuid

from django.conf import settings
from rest_framework.exceptions import NotFound

from agents.cache import CONFIG_FIELDS, agent_config_cached, agent_config_fill, agent_owner_get
from agents.models import Agent
from agents.services.status import agent_effective_status


def parse_uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


def get_owned_or_404(queryset, object_id, *, label: str, for_update: bool = False):
    """The object with this UUID inside an already-scoped queryset, or 404 ('None', malformed ids and
    other owners' objects alike: never reveal that something exists)."""
    pk = parse_uuid(object_id)
    obj = None
    if pk is not None:
        qs = queryset.filter(pk=pk)
        obj = (qs.select_for_update() if for_update else qs).first()
    if obj is None:
        raise NotFound(f"{label} not found.")
    return obj


def agent_get_for_client(*, client, agent_id, for_update: bool = False) -> Agent:
    """The caller's own agent, or 404 (also for another client's agent, 'None' and malformed ids)."""
    return get_owned_or_404(Agent.objects.filter(client=client), agent_id, label="Agent", for_update=for_update)




def agent_owned_pk(*, client, agent_id):
    """The caller's own agent's id, or 404 (also for another client's agent, 'None' and malformed
    ids). Cached per process: an agent belongs to one client forever (agents/cache.py)."""
    pk = parse_uuid(agent_id)
    if pk is None or agent_owner_get(agent_pk=pk) != client.pk:
        raise NotFound("Agent not found.")
    return pk


def _config_from(agent_pk, values: dict) -> dict:
    return {
        "agent_id": str(agent_pk),
        **{name: values[name] for name in CONFIG_FIELDS},
        "AUTO_CLEANUP_ENABLED": settings.AUTO_CLEANUP_ENABLED,
        "CLEANUP_SNAPSHOTS_DAYS": settings.CLEANUP_SNAPSHOTS_DAYS,
        "CLEANUP_AMIS_DAYS": settings.CLEANUP_AMIS_DAYS,
    }


def agent_config(*, agent: Agent) -> dict:
    """What the agent polls every minute. It reads `enabled` (always present: a config without it
    re-enables the agent); the rest is for the dashboard and newer agents."""
    return _config_from(agent.pk, {name: getattr(agent, name) for name in CONFIG_FIELDS})


def agent_config_for_client(*, client, agent_id) -> dict:
    """`agent_config` of the caller's own agent; no query while the cached settings are valid."""
    pk = agent_owned_pk(client=client, agent_id=agent_id)
    values, seen = agent_config_cached(agent_pk=pk)
    if values is None:
        values = Agent.objects.filter(pk=pk, client=client).values(*CONFIG_FIELDS).first()
        if values is None:
            raise NotFound("Agent not found.")
        agent_config_fill(agent_pk=pk, seen=seen, values=values)
    return _config_from(pk, values)


def agent_summary(*, agent: Agent, now=None) -> dict:
    """One agent as the dashboard renders it (docs/API.md §2)."""
    return {
        "id": str(agent.pk),
        "hostname": agent.hostname,
        "logical_agent_id": agent.logical_agent_id,
        "instance_id": agent.instance_id,
        "instance_type": agent.instance_type,
        "az": agent.az,
        "current_mode": agent.current_mode,
        "status": agent_effective_status(agent=agent, now=now),
        "last_heartbeat_at": agent.last_heartbeat_at,
        "enabled": agent.enabled,
        "auto_switch_enabled": agent.auto_switch_enabled,
        "auto_terminate_enabled": agent.auto_terminate_enabled,
        "manual_replica_enabled": agent.manual_replica_enabled,
        "replica_count": agent.replica_count,
    }


def replica_item(replica) -> dict:
    """One replica as the dashboard renders it (docs/API.md §2): ids as strings, cost as a number."""
    return {
        "id": str(replica.pk),
        "agent_id": str(replica.agent_id),
        "instance_id": replica.instance_id,
        "replica_type": replica.replica_type,
        "parent_instance_id": replica.parent_instance_id,
        "pool_id": replica.pool_id or "",
        "status": replica.status,
        "hourly_cost": replica.hourly_cost,
        "termination_event_id": replica.termination_event_id,
        "created_at": replica.created_at,
        "ready_at": replica.ready_at,
        "promoted_at": replica.promoted_at,
        "terminated_at": replica.terminated_at,
    }


def replica_config(*, agent: Agent) -> dict:
    """What a newer agent reads to manage its replicas (docs/API.md §1.12). Two queries."""
    from agents.models import Replica
    from agents.states import REPLICA_LIVE as LIVE_STATUSES

    live = list(Replica.objects.filter(agent=agent, status__in=LIVE_STATUSES).order_by("-created_at")[:20])
    return {
        "agent_id": str(agent.pk),
        "manual_replica_enabled": agent.manual_replica_enabled,
        "replica_count": agent.replica_count,
        "auto_switch_enabled": agent.auto_switch_enabled,
        "emergency_replica_auto_create": settings.TERMINATION_REPLICA_AUTO_CREATE,
        "emergency_replica_count": agent.emergency_replica_count,
        "current_pool_id": agent.current_pool_id or "",
        "replicas": [replica_item(r) for r in live],
    }


def decisions_for_client(*, client, limit: int = 50, offset: int = 0) -> dict:
    """GET /api/client/{client_id}/decisions (issue 9, item 8): one page of the client's automatic
    decisions, newest first, with the total for paging. Two queries."""
    from agents.models import Decision
    from agents.services.decisions import decision_item

    qs = Decision.objects.filter(client=client)
    page = qs.order_by("-created_at", "-pk")[offset : offset + limit]
    return {"decisions": [decision_item(d) for d in page], "total": qs.count()}
