"""Reads the API needs, each a fixed, small number of queries. They return data (model instances,
dicts of values); the output serializers in agents/api/outputs.py render it."""
import uuid
from dataclasses import dataclass

from django.conf import settings
from rest_framework.exceptions import NotFound

from agents.cache import CONFIG_FIELDS, agent_config_cached, agent_config_fill, agent_facts_get, agent_owner_get
from agents.models import Agent, Replica
from agents.states import REPLICA_LIVE
from agents.services.status import agent_effective_status
# The toolkit lives in the project package; services still import these names from here.
from spotbackend.api import agent_get_for_client, get_owned_or_404, parse_uuid  # noqa: F401



def agent_owned_pk(*, client, agent_id):
    """The caller's own agent's id, or 404 (also for another client's agent, 'None' and malformed
    ids). Cached per process: an agent belongs to one client forever (agents/cache.py)."""
    pk = parse_uuid(agent_id)
    if pk is None or agent_owner_get(agent_pk=pk) != client.pk:
        raise NotFound("Agent not found.")
    return pk


@dataclass
class ReportingAgent:
    """What a pricing report needs of its agent, without loading the row (agents/cache.py)."""

    pk: uuid.UUID
    client_id: uuid.UUID
    instance_id: str
    current_mode: str
    current_pool_id: str | None
    region: str


def agent_reporting(*, client, agent_id) -> ReportingAgent:
    """The caller's own agent as a pricing report sees it, or 404."""
    pk = agent_owned_pk(client=client, agent_id=agent_id)
    facts = agent_facts_get(agent_pk=pk)
    if facts is None:
        raise NotFound("Agent not found.")
    return ReportingAgent(pk=pk, **facts)


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


def agent_with_status(agent: Agent, now=None) -> Agent:
    """The agent with `effective_status` set: what the dashboard shows (offline once its heartbeat is
    too old), as of `now`."""
    agent.effective_status = agent_effective_status(agent=agent, now=now)
    return agent


def replica_hourly_cost(replica: Replica):
    """What a replica costs per hour: the recorded cost, else its pool's latest spot price, else None
    (unknown; shown as 0.0). Callers select_related("pool")."""
    if replica.hourly_cost is not None:
        return replica.hourly_cost
    return replica.pool.latest_price if replica.pool_id and replica.pool is not None else None


def replica_config(*, agent: Agent) -> dict:
    """What a newer agent reads to manage its replicas (docs/API.md §1.12): the agent and its live
    replicas (ReplicaConfigSerializer renders it). Two queries."""

    live = list(
        Replica.objects.filter(agent=agent, status__in=REPLICA_LIVE).select_related("pool").order_by("-created_at")[:20]
    )
    return {
        "agent": agent,
        "emergency_replica_auto_create": settings.TERMINATION_REPLICA_AUTO_CREATE,
        "replicas": live,
    }


def decisions_for_client(*, client, limit: int = 50, offset: int = 0) -> dict:
    """GET /api/client/{client_id}/decisions (issue 9, item 8): one page of the client's automatic
    decisions, newest first, with the total for paging. Two queries."""
    from agents.models import Decision

    qs = Decision.objects.filter(client=client)
    return {"decisions": list(qs.order_by("-created_at", "-pk")[offset : offset + limit]), "total": qs.count()}
