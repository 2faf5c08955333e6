"""Reads the API needs, each a fixed, small number of queries. They return data (model instances,
dicts of values); the output serializers in agents/api/outputs.py render it. A missing or foreign
object is a NotFoundError (404)."""
from django.conf import settings
from django.db.models import FilteredRelation, Q

from agents import cache
from agents.models import CONFIG_FIELDS, Agent, Command, CommandStatus, Replica
from agents.states import REPLICA_LIVE
from agents.services.status import agent_effective_status
from spotbackend.api import get_owned_or_404, parse_uuid
from spotbackend.exceptions import NotFoundError



def agent_get_for_client(*, client, agent_id, for_update: bool = False) -> Agent:
    """The caller's own agent, or NotFoundError (also for another client's agent, 'None' and malformed ids)."""
    return get_owned_or_404(Agent.objects.filter(client=client), agent_id, label="Agent", for_update=for_update)


def agent_owned_values(*, client, agent_id, fields) -> dict:
    """These columns of the caller's own agent (one query), or NotFoundError."""
    pk = parse_uuid(agent_id)
    rows = Agent.objects.filter(pk=pk, client=client).values("id", *fields).order_by()[:1] if pk else []
    if not rows:
        raise NotFoundError("Agent not found.")
    return rows[0]


def agent_pending_command(*, client, agent_id) -> Command | None:
    """The pending command of the caller's own agent (with its agent), None when there is none, or
    NotFoundError. No query while the cache knows there is none (agents/cache.py)."""
    pk = parse_uuid(agent_id)
    if pk is not None and cache.commands_none_known(pk, client.pk):
        return None
    pending = FilteredRelation("commands", condition=Q(commands__is_open=True, commands__status=CommandStatus.PENDING))
    # One row at most (one open command per agent): no ORDER BY to compile.
    found = list(Agent.objects.filter(pk=pk, client=client).annotate(pending=pending)
                 .values_list("pending__id", flat=True).order_by()[:1]) if pk else []
    if not found:
        raise NotFoundError("Agent not found.")
    if found[0] is None:
        cache.commands_none_remember(pk, client.pk)
        return None
    return Command.objects.select_related("agent").get(pk=found[0])


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
    """`agent_config` of the caller's own agent: from the cache, else one query (agents/cache.py)."""
    pk = parse_uuid(agent_id)
    values = cache.config_get(pk) if pk is not None else None
    if values is None or values["client_id"] != client.pk:
        values = {**agent_owned_values(client=client, agent_id=pk, fields=CONFIG_FIELDS), "client_id": client.pk}
        cache.config_fill(pk, values)
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
