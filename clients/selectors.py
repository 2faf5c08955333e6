"""What the customers' dashboard reads (docs/API.md §2). Every selector is scoped to the caller's client
and makes a fixed number of queries whatever the number of rows."""
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
from agents.selectors import agent_summary, parse_uuid
from agents.services.market import pools_in_cooldown
from agents.services.ondemand import ondemand_price_get, ondemand_prices_get
from agents.services.status import agent_effective_status
from clients.models import Client
from savings.selectors import client_savings_totals

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


def _price(value) -> float:
    """A JSON number always: the dashboard calls .toFixed() on it, and null would break the page.
    An unknown price (no quote yet, or no spot price for an on-demand instance) is 0."""
    return float(value) if value is not None else 0.0


def _alive_q(now, prefix: str = "") -> Q:
    """Agents whose effective status is not offline (agent_effective_status, as a query)."""
    return agent_alive_q(now=now, prefix=prefix)


def _switch_brief(switch: Switch) -> dict:
    return {
        "id": str(switch.pk),
        "old_instance_id": switch.old_instance_id,
        "new_instance_id": switch.new_instance_id,
        "old_mode": switch.old_mode,
        "new_mode": switch.new_mode,
        "savings_impact": _price(switch.savings_impact),
        "initiated_at": switch.initiated_at,
    }


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
        {
            "id": str(a.pk),
            "status": agent_effective_status(agent=a, now=now),
            "hostname": a.hostname,
            "instance_id": a.instance_id,
            "instance_type": a.instance_type,
            "region": a.region,
            "current_mode": a.current_mode,
        }
        for a in Agent.objects.filter(Q(client=client) & alive).order_by("hostname", "id")
    ]
    savings = client_savings_totals(client=client, today=now.date())
    return {
        "total_agents": agent_counts["total"],
        "online_agents": agent_counts["online"],
        "active_instances": instance_counts["active"],
        "spot_instances": instance_counts["spot"],
        "total_switches": switch_counts["total"],
        "switches_today": switch_counts["today"],
        "total_savings": float(savings["total_savings"]),
        "monthly_savings": float(savings["monthly_savings"]),
        "recent_switches": [_switch_brief(s) for s in recent],
        "active_agents": active_agents,
    }


def client_agents(*, client: Client, now=None) -> dict:
    now = now or timezone.now()
    agents = Agent.objects.filter(client=client).order_by("hostname", "id")
    return {"agents": [agent_summary(agent=a, now=now) for a in agents]}


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
    ondemand = ondemand_prices_get(keys={(inst.instance_type, inst.region) for inst in rows})
    instances = []
    for inst in rows:
        active = inst.state == InstanceState.PRIMARY and agent_effective_status(agent=inst.agent, now=now) != AgentStatus.OFFLINE
        spot_price = inst.pool.latest_price if inst.mode == Mode.SPOT and inst.pool is not None else None
        instances.append(
            {
                "id": inst.instance_id,
                "instance_type": inst.instance_type,
                "region": inst.region,
                "az": inst.az,
                "current_mode": inst.mode,
                "spot_price": _price(spot_price),
                "ondemand_price": _price(ondemand.get((inst.instance_type, inst.region))),
                "is_active": active,
            }
        )
    return {"instances": instances}


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
                    "price": _price(pool.latest_price),
                    "price_at": pool.latest_price_at,
                    "is_fresh": pool.latest_price_at is not None and pool.latest_price_at >= fresh_after,
                    "risk_score": _price(pool.risk_score),
                    "risk_recommendation": pool.risk_recommendation or None,
                    "in_cooldown": pool.pk in cooling,  # as this client's decisions see it
                    "is_current": pool.pk == inst.pool_id,
                }
            )
    priced = [p for p in pools if p["price"] is not None]
    cheapest = min(priced, key=lambda p: (p["price"], p["pool_id"])) if priced else None
    current_spot = inst.pool.latest_price if inst.mode == Mode.SPOT and inst.pool is not None else None
    ondemand = _price(ondemand_price_get(instance_type=inst.instance_type, region=inst.region))
    return {
        "instance_id": inst.instance_id,
        "agent_id": str(inst.agent_id),
        "instance_type": inst.instance_type,
        "region": inst.region,
        "az": inst.az,
        "current_mode": inst.mode,
        "current_pool_id": inst.pool_id or None,
        "current_spot_price": _price(current_spot),
        "ondemand_price": ondemand,
        "cheapest_pool": {"pool_id": cheapest["pool_id"], "price": cheapest["price"]} if cheapest else None,
        "pools": pools,
    }


def client_switches(*, client: Client, limit: int = SWITCHES_LIMIT_DEFAULT, offset: int = 0) -> dict:
    """One page of the client's switches, newest first, with the total for paging."""
    qs = Switch.objects.filter(client=client)
    page = qs.order_by("-initiated_at", "-created_at")[offset : offset + limit]
    return {
        "switches": [
            {
                "id": str(s.pk),
                "agent_id": str(s.agent_id),
                "old_instance_id": s.old_instance_id,
                "new_instance_id": s.new_instance_id,
                "old_mode": s.old_mode,
                "new_mode": s.new_mode,
                "old_az": s.old_az,
                "new_az": s.new_az,
                "trigger_type": s.trigger_type,
                "savings_impact": _price(s.savings_impact),
                "initiated_at": s.initiated_at,
            }
            for s in page
        ],
        "total": qs.count(),
    }


def client_replicas(*, client: Client, now=None) -> dict:
    """Live replicas, and those promoted or terminated within ENDED_VISIBLE_FOR. `hourly_cost` is the
    recorded cost, else the pool's latest spot price (None while unknown)."""
    now = now or timezone.now()
    ended = (ReplicaStatus.PROMOTED, ReplicaStatus.TERMINATED)
    rows = (
        Replica.objects.filter(client=client)
        .filter(~Q(status__in=ended) | Q(updated_at__gte=now - ENDED_VISIBLE_FOR))
        .select_related("pool")
        .order_by("-created_at", "-id")
    )
    return {
        "replicas": [
            {
                "id": str(r.pk),
                "agent_id": str(r.agent_id),
                "instance_id": r.instance_id,
                "replica_type": r.replica_type,
                "pool_id": r.pool_id or "",
                "status": r.status,
                "hourly_cost": _price(r.hourly_cost if r.hourly_cost is not None else (r.pool.latest_price if r.pool else None)),
            }
            for r in rows
        ]
    }
