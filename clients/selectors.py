"""What the customers' dashboard reads (docs/API.md §2). Every selector is scoped to the caller's client
and makes a fixed number of queries whatever the number of rows. They return data (model instances,
dicts of values); clients/api/serializers.py renders it (an unknown price shows as 0.0 there)."""
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone
from rest_framework.exceptions import NotFound

from agents.models import (
    Agent,
    AgentStatus,
    Instance,
    InstanceState,
    Mode,
    Replica,
    ReplicaStatus,
    SpotPool,
    Switch,
    agent_alive_q,
)
from agents.selectors import agent_with_status
from agents.services.market import pools_in_cooldown
from agents.services.ondemand import ondemand_price_get, ondemand_prices_get
from agents.services.status import agent_effective_status
from clients.models import Client
from savings.selectors import client_savings_totals
from spotbackend.api import parse_uuid

RECENT_SWITCHES = 10
# Ended instances and replicas stay on the dashboard this long, then only the history keeps them.
ENDED_VISIBLE_FOR = timedelta(days=7)
SWITCHES_LIMIT_DEFAULT = 50
SWITCHES_LIMIT_MAX = 500


def client_get_for_caller(*, caller: Client, client_id) -> Client:
    """The caller itself when `client_id` names it; any other (or malformed) id is a 404."""
    if parse_uuid(client_id) != caller.pk:
        raise NotFound("Client not found.")
    return caller




def _alive_q(now, prefix: str = "") -> Q:
    """Agents whose effective status is not offline (agent_effective_status, as a query)."""
    return agent_alive_q(now=now, prefix=prefix)


def client_stats(*, client: Client, now=None) -> dict:
    """The stats card: counts, savings, the latest switches and the agents that are not offline."""
    now = now or timezone.now()
    alive = _alive_q(now)
    agent_counts = Agent.objects.filter(client=client).aggregate(
        total=Count("pk"), online=Count("pk", filter=alive & Q(status=AgentStatus.ONLINE))
    )
    instance_counts = Instance.objects.filter(client=client, state=InstanceState.PRIMARY).aggregate(
        active=Count("pk", filter=_alive_q(now, "agent__")),
        spot=Count("pk", filter=_alive_q(now, "agent__") & Q(mode=Mode.SPOT)),
    )
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    switch_counts = Switch.objects.filter(client=client).aggregate(
        total=Count("pk"), today=Count("pk", filter=Q(initiated_at__gte=day_start))
    )
    recent = Switch.objects.filter(client=client).order_by("-initiated_at", "-created_at")[:RECENT_SWITCHES]
    active_agents = [
        agent_with_status(a, now=now) for a in Agent.objects.filter(Q(client=client) & alive).order_by("hostname", "id")
    ]
    savings = client_savings_totals(client=client, today=now.date())
    return {
        "total_agents": agent_counts["total"],
        "online_agents": agent_counts["online"],
        "active_instances": instance_counts["active"],
        "spot_instances": instance_counts["spot"],
        "total_switches": switch_counts["total"],
        "switches_today": switch_counts["today"],
        "total_savings": savings["total_savings"],
        "monthly_savings": savings["monthly_savings"],
        "recent_switches": list(recent),
        "active_agents": active_agents,
    }


def client_agents(*, client: Client, now=None) -> dict:
    now = now or timezone.now()
    agents = Agent.objects.filter(client=client).order_by("hostname", "id")
    return {"agents": [agent_with_status(a, now=now) for a in agents]}


def client_instances(*, client: Client, now=None) -> dict:
    """Every instance still running or possibly running (primary or replaced), and those that ended
    within ENDED_VISIBLE_FOR. `is_active`: the agent's current instance, agent not offline."""
    now = now or timezone.now()
    rows = (
        Instance.objects.filter(client=client)
        .filter(~Q(state=InstanceState.TERMINATED) | Q(ended_at__gte=now - ENDED_VISIBLE_FOR))
        .select_related("agent", "pool")
        .order_by("-started_at", "-id")
    )
    instances = list(rows)
    ondemand = ondemand_prices_get(keys={(inst.instance_type, inst.region) for inst in instances})
    for inst in instances:
        inst.ondemand_price = ondemand.get((inst.instance_type, inst.region))
        inst.is_active = (
            inst.state == InstanceState.PRIMARY and agent_effective_status(agent=inst.agent, now=now) != AgentStatus.OFFLINE
        )
        inst.spot_price = _spot_price(inst)
    return {"instances": instances}


def _spot_price(inst: Instance):
    """The spot price an instance pays now: its pool's latest, while it runs on spot (None if unknown)."""
    return inst.pool.latest_price if inst.mode == Mode.SPOT and inst.pool is not None else None


def instance_pricing(*, client: Client, instance_id: str, now=None) -> dict:
    """The spot pools an instance could run in (same type and region), with their latest price and
    risk, plus its on-demand price. `instance_id` is the EC2 id the instance list hands out."""
    now = now or timezone.now()
    inst = (
        Instance.objects.filter(client=client, instance_id=instance_id)
        .select_related("pool")
        .order_by("-started_at", "-id")
        .first()
    )
    if inst is None:
        raise NotFound("Instance not found.")
    fresh_after = now - timedelta(seconds=settings.PRICE_FRESHNESS_SECONDS)
    pools = []
    if inst.instance_type and inst.region:
        rows = list(SpotPool.objects.filter(instance_type=inst.instance_type, region=inst.region).order_by("az", "id"))
        cooling = pools_in_cooldown(client_id=client.pk, pool_ids=[p.pk for p in rows], now=now)
        for pool in rows:
            pools.append(
                {
                    "pool_id": pool.pk,
                    "instance_type": pool.instance_type,
                    "az": pool.az,
                    "price": pool.latest_price,
                    "price_at": pool.latest_price_at,
                    "is_fresh": pool.latest_price_at is not None and pool.latest_price_at >= fresh_after,
                    "risk_score": pool.risk_score,
                    "risk_recommendation": pool.risk_recommendation or None,
                    "in_cooldown": pool.pk in cooling,  # as this client's decisions see it
                    "is_current": pool.pk == inst.pool_id,
                }
            )
    # Only a pool with a known price can be the cheapest (an unknown one is shown as 0.0, not offered).
    priced = [p for p in pools if p["price"] is not None]
    cheapest = min(priced, key=lambda p: (p["price"], p["pool_id"])) if priced else None
    return {
        "instance_id": inst.instance_id,
        "agent_id": str(inst.agent_id),
        "instance_type": inst.instance_type,
        "region": inst.region,
        "az": inst.az,
        "current_mode": inst.mode,
        "current_pool_id": inst.pool_id or None,
        "current_spot_price": _spot_price(inst),
        "ondemand_price": ondemand_price_get(instance_type=inst.instance_type, region=inst.region),
        "cheapest_pool": {"pool_id": cheapest["pool_id"], "price": cheapest["price"]} if cheapest else None,
        "pools": pools,
    }


def client_switches(*, client: Client, limit: int = SWITCHES_LIMIT_DEFAULT, offset: int = 0) -> dict:
    """One page of the client's switches, newest first, with the total for paging."""
    qs = Switch.objects.filter(client=client)
    page = qs.order_by("-initiated_at", "-created_at")[offset : offset + limit]
    return {"switches": list(page), "total": qs.count()}


def client_replicas(*, client: Client, now=None) -> dict:
    """Live replicas, and those promoted or terminated within ENDED_VISIBLE_FOR."""
    now = now or timezone.now()
    ended = (ReplicaStatus.PROMOTED, ReplicaStatus.TERMINATED)
    rows = (
        Replica.objects.filter(client=client)
        .filter(~Q(status__in=ended) | Q(updated_at__gte=now - ENDED_VISIBLE_FOR))
        .select_related("pool")
        .order_by("-created_at", "-id")
    )
    return {"replicas": list(rows)}


AUDIT_LIMIT_DEFAULT = 50
AUDIT_LIMIT_MAX = 500


def client_tokens(*, client: Client) -> dict:
    """The client's named tokens, revoked ones included (newest first)."""
    from clients.models import ClientToken

    return {"tokens": list(ClientToken.objects.filter(client=client).order_by("-created_at", "id"))}


def client_token_get(*, client: Client, token_id, for_update: bool = False):
    from clients.models import ClientToken
    from spotbackend.api import get_owned_or_404

    return get_owned_or_404(ClientToken.objects.filter(client=client), token_id, label="Token", for_update=for_update)


def client_audit(*, client: Client, limit: int = AUDIT_LIMIT_DEFAULT, offset: int = 0) -> dict:
    """One page of the client's audit trail, newest first, with the total."""
    from clients.models import AuditEntry

    qs = AuditEntry.objects.filter(client=client)
    return {"entries": list(qs.order_by("-created_at", "-id")[offset : offset + limit]), "total": qs.count()}


def client_events(*, client: Client, limit: int = AUDIT_LIMIT_DEFAULT, offset: int = 0) -> dict:
    """One page of the client's system events (e.g. a webhook endpoint disabled), newest first."""
    from agents.models import SystemEvent

    qs = SystemEvent.objects.filter(client=client)
    return {"events": list(qs.order_by("-created_at", "-id")[offset : offset + limit]), "total": qs.count()}
