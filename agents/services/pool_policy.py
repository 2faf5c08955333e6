"""Pool policy (docs/ARCHITECTURE.md §4): which spot pool a switch, a replica or a failover goes to.
Ranking, exclusions, cooldown and risk order live here and nowhere else; every path calls one of
the `pool_for_*` functions, all built on `pool_select`."""
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agents.models import Agent, Mode, RiskRecommendation, SpotPool
from agents.services import market
from agents.services.risk import RISK_BUCKET, worse_recommendation



def risk_bucket(pool: SpotPool | None) -> int:
    return RISK_BUCKET.get(pool.risk_recommendation, 1) if pool is not None else 1


@dataclass(frozen=True)
class PoolChoice:
    pool: SpotPool | None  # None: no spot pool qualifies, go on-demand
    reason: str
    capped_by: SpotPool | None = None  # the pool read by `max_risk_of_id` (pool_select), if it exists

    @property
    def target_mode(self) -> str:
        return "spot" if self.pool is not None else "ondemand"


def _rank(pool: SpotPool) -> tuple:
    return (risk_bucket(pool), pool.latest_price, pool.pk)


def _candidates(*, instance_type: str, region: str, fresh_after, exclude_pool_ids, also_id) -> list[SpotPool]:
    """The pools of this type and region with a fresh price, less the excluded ones; plus the pool
    `also_id` whatever it is (excluded from the candidates: the caller tells it apart)."""
    fresh = Q(instance_type=instance_type, region=region, latest_price_at__gte=fresh_after,
              latest_price__isnull=False) & ~Q(pk__in=[pk for pk in exclude_pool_ids if pk])
    return list(SpotPool.objects.filter(fresh | Q(pk=also_id) if also_id else fresh))


def pool_select(
    *,
    instance_type: str,
    region: str,
    exclude_pool_ids: tuple[str, ...] = (),
    max_risk_of: SpotPool | None = None,
    max_risk_of_id: str | None = None,
    now=None,
    client_id=None,
) -> PoolChoice:
    """Best spot pool of this type and region for this client: recent price, not cooling down, not
    `avoid`, not excluded, never riskier than `max_risk_of`; ranked by risk bucket, then price.
    `max_risk_of_id`: the same cap given by id, for a pool that is excluded too; its row is read with
    the candidates and returned as `capped_by`. Cooldown and risk weigh the client's own interruption
    signals and other clients' only when several agree (agents/services/market.py); client_id None: only
    the agreed ones. Two indexed queries."""

    now = now or timezone.now()
    capped_by = None
    if max_risk_of_id and max_risk_of is None:
        exclude_pool_ids = (*exclude_pool_ids, max_risk_of_id)
    else:
        max_risk_of_id = None
    if not instance_type or not region:
        if max_risk_of_id:
            capped_by = SpotPool.objects.filter(pk=max_risk_of_id).first()
        return PoolChoice(None, "instance type or region unknown: on-demand", capped_by)
    fresh_after = now - timedelta(seconds=settings.PRICE_FRESHNESS_SECONDS)
    candidates = _candidates(instance_type=instance_type, region=region, fresh_after=fresh_after,
                             exclude_pool_ids=exclude_pool_ids, also_id=max_risk_of_id)
    if max_risk_of_id:
        capped_by = max_risk_of = next((p for p in candidates if p.pk == max_risk_of_id), None)
        candidates = [p for p in candidates if p.pk != max_risk_of_id]
    ids = [p.pk for p in candidates] + ([max_risk_of.pk] if max_risk_of is not None else [])
    signals = market.pool_signals(client_id=client_id, pool_ids=ids, now=now)
    cooling, own = signals.cooling, signals.own
    for p in candidates:  # the recommendation as this client's decisions see it (not saved)
        if p.pk in own:
            p.risk_recommendation = worse_recommendation(p.risk_recommendation, own[p.pk])
    candidates = [p for p in candidates if p.pk not in cooling and p.risk_recommendation != RiskRecommendation.AVOID]
    ranked = sorted(candidates, key=_rank)
    if max_risk_of is not None:
        worst = max_risk_of.risk_recommendation
        if max_risk_of.pk in own:
            worst = worse_recommendation(worst, own[max_risk_of.pk])
        ceiling = RISK_BUCKET.get(worst, 1)
        ranked = [p for p in ranked if risk_bucket(p) <= ceiling]
    if not ranked:
        return PoolChoice(None, f"no fresh, safe spot pool for {instance_type} in {region}: on-demand", capped_by)
    best = ranked[0]
    risk = best.risk_recommendation or "unrated"
    return PoolChoice(best, f"lowest risk ({risk}) then cheapest ({Decimal(best.latest_price).normalize()} USD/h)",
                      capped_by)


def pool_for_command(*, agent: Agent) -> PoolChoice:
    """A dashboard spot command that names no pool: the best pool other than the one the agent runs
    in on spot."""
    exclude = (agent.current_pool_id,) if agent.current_mode == Mode.SPOT and agent.current_pool_id else ()
    return pool_select(instance_type=agent.instance_type, region=agent.region, exclude_pool_ids=exclude,
                       client_id=agent.client_id)


def pool_for_manual_replica(*, agent: Agent) -> PoolChoice:
    """A manual replica that names no pool: the best pool other than the agent's current one."""
    exclude = (agent.current_pool_id,) if agent.current_pool_id else ()
    return pool_select(instance_type=agent.instance_type, region=agent.region, exclude_pool_ids=exclude,
                       client_id=agent.client_id)


def pool_for_failover(*, agent: Agent, dying_pool: SpotPool | None = None, dying_pool_id: str | None = None,
                      now: datetime | None = None) -> PoolChoice:
    """The failover target on a termination notice: not the dying pool, never riskier than it;
    on-demand when none qualifies. The dying pool as a row, or by id (its row is then read with the
    candidates and returned as `capped_by`)."""
    if dying_pool is not None:
        return pool_select(
            instance_type=agent.instance_type, region=agent.region, exclude_pool_ids=(dying_pool.pk,),
            max_risk_of=dying_pool, now=now, client_id=agent.client_id,
        )
    return pool_select(instance_type=agent.instance_type, region=agent.region, max_risk_of_id=dying_pool_id or None,
                       now=now, client_id=agent.client_id)


def pool_for_rebalance(*, agent: Agent, pool: SpotPool | None, now: datetime | None = None) -> PoolChoice | None:
    """A clearly safer pool than the current one on a rebalance recommendation, or None. The
    recommendation itself is a risk signal: for this choice the current pool counts as at least
    `caution` (its stored verdict is written only by the risk analysis, which counts the recorded
    recommendation among its inputs: risk.REBALANCE_FLOOR)."""
    raised = max(risk_bucket(pool), RISK_BUCKET[RiskRecommendation.CAUTION])
    exclude = (pool.pk,) if pool is not None else ()
    choice = pool_select(instance_type=agent.instance_type, region=agent.region, exclude_pool_ids=exclude, now=now,
                         client_id=agent.client_id)
    if choice.pool is None or risk_bucket(choice.pool) >= raised:
        return None
    return choice


def pool_cooldown_start(*, pool_id: str | None, now: datetime, marked_until: datetime | None = None,
                        known: bool = False) -> None:
    """Record on the pool row, for staff, that it just produced a termination notice. Decisions do not
    read it (a client's cooldown comes from the notices themselves: agents/services/market.py), so it
    is written after the notice's transaction commits, as one statement that skips a pool already
    marked: a burst of notices in one pool then neither queues on that row nor deadlocks on it.
    `known`: the caller read the row in this request and `marked_until` is its `cooldown_until`; a pool
    already marked then costs no statement at all (the mark only moves forward)."""
    if not pool_id:
        return
    until = now + timedelta(seconds=settings.POOL_COOLDOWN_SECONDS)
    stale = until - timedelta(seconds=min(60, settings.POOL_COOLDOWN_SECONDS))
    if known and marked_until is not None and marked_until >= stale:
        return

    def mark():
        SpotPool.objects.filter(pk=pool_id).filter(
            Q(cooldown_until__isnull=True) | Q(cooldown_until__lt=stale)
        ).update(cooldown_until=until)

    transaction.on_commit(mark)
