"""Market data shared between clients: what one client's reports may change for the others
(docs/SECURITY.md, "Market data shared between clients").

Pools, prices and interruption signals are facts about AWS, reported by every client's agents. One
client must not be able to steer another's decisions through them, so:
- sample times come from the server clock: a reported time is kept only when it is not in the future;
- a quote is kept only for a real AZ of the reporting instance's region, at a positive price no higher
  than SPOT_MAX_ONDEMAND_RATIO x the known real on-demand price; other quotes are dropped, the rest kept;
- interruption evidence (termination notices, rebalance recommendations) counts for a client when its
  own agents reported it, and for everyone when at least MARKET_EVIDENCE_QUORUM distinct clients did.
"""
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Max, Q

from agents.models import OnDemandPriceSample, TerminationEvent, TerminationEventType
from agents.services.risk import WINDOW, risk_score_compute

# An AZ is its region plus one letter a-f (us-east-1a .. us-east-1f), or a local zone of the region
# (us-west-2-lax-1a). 'us-east-1q' or another region's AZ is not a pool of this instance.
AZ_LETTERS = "a-f"
SIGNAL_TYPES = (TerminationEventType.TERMINATION_NOTICE, TerminationEventType.REBALANCE_RECOMMENDATION)


def sample_time(*, reported: datetime | None, now: datetime) -> datetime:
    """The time stored for a client-reported sample: the agent's own time, never later than the
    server's clock, so a date in the future cannot make a sample the latest one for good."""
    return min(reported, now) if reported is not None else now


def az_belongs_to_region(*, az: str, region: str) -> bool:
    if not az or not region:
        return False
    return bool(re.fullmatch(rf"{re.escape(region)}(-[a-z]{{2,5}}-\d+)?[{AZ_LETTERS}]", az))


def ondemand_ceiling(*, instance_type: str, region: str, reported: Decimal | None,
                     reported_is_fallback: bool) -> Decimal | None:
    """The highest plausible spot price for this type and region: SPOT_MAX_ONDEMAND_RATIO x the lowest
    of the stored real on-demand quote and the report's own real quote (the agents' stand-ins are not
    quotes). None: no real quote known, no ceiling."""
    known = []
    if reported is not None and not reported_is_fallback and reported > 0:
        known.append(Decimal(reported))
    if instance_type and region:
        stored = _stored_real_quote(instance_type=instance_type, region=region)
        if stored is not None and stored > 0:
            known.append(stored)
    if not known:
        return None
    return min(known) * Decimal(str(settings.SPOT_MAX_ONDEMAND_RATIO))


def _stored_real_quote(*, instance_type: str, region: str) -> Decimal | None:
    return (
        OnDemandPriceSample.objects.filter(instance_type=instance_type, region=region, is_fallback=False)
        .order_by("-observed_at").values_list("price", flat=True).first()
    )


def quote_problem(*, az: str, region: str, price, ceiling: Decimal | None) -> str:
    """Why a reported spot quote is not kept ('' when it is)."""
    if region and not az_belongs_to_region(az=az, region=region):
        return f"pool_id: '{az}' is not an availability zone of {region}"
    if not region:
        return "pool_id: the reporting instance's region is unknown"
    if price is None or not Decimal(price).is_finite() or Decimal(price) <= 0:
        return "price: must be a positive number"
    if ceiling is not None and Decimal(price) > ceiling:
        return f"price: above {settings.SPOT_MAX_ONDEMAND_RATIO} x the on-demand price ({ceiling.normalize()})"
    return ""


def evidence_counts(*, client_id, clients: set) -> bool:
    """Whether signals from `clients` count for `client_id` (None: for everyone, the shared view)."""
    return (client_id is not None and client_id in clients) or len(clients) >= settings.MARKET_EVIDENCE_QUORUM


@dataclass(frozen=True)
class PoolSignals:
    cooling: set  # pools in cooldown for the client
    own: dict  # pool -> risk recommendation from the client's own signals alone (pools with some)


def pool_signals(*, client_id, pool_ids, now: datetime) -> PoolSignals:
    """What this client's decisions see of the pools' interruption signals, in one indexed query:
    - cooldown: a termination notice in the last POOL_COOLDOWN_SECONDS from the client's own agents, or
      from at least MARKET_EVIDENCE_QUORUM distinct clients;
    - own risk: the recommendation the client's own notices and rebalance recommendations of the last
      24 h give by the rule of risk.risk_score_compute; a decision takes the worse of it and the shared
      analysis (which counts only agreed signals, agreed_event_counts)."""
    pool_ids = [p for p in pool_ids if p]
    if not pool_ids:
        return PoolSignals(set(), {})
    cooldown_from = now - timedelta(seconds=settings.POOL_COOLDOWN_SECONDS)
    risk_from = now - WINDOW
    rows = _signal_rows(pool_ids=pool_ids, since=min(cooldown_from, risk_from), risk_from=risk_from, now=now)
    notifiers: dict[str, set] = {}
    own_counts: dict[str, dict[str, int]] = {}
    for r in rows:
        if r["event_type"] == TerminationEventType.TERMINATION_NOTICE and r["last"] > cooldown_from:
            notifiers.setdefault(r["pool_id"], set()).add(r["client_id"])
        if client_id is not None and r["client_id"] == client_id and r["in_risk"]:
            own_counts.setdefault(r["pool_id"], {})[r["event_type"]] = r["in_risk"]
    cooling = {p for p, clients in notifiers.items() if evidence_counts(client_id=client_id, clients=clients)}
    own = {
        pool_id: risk_score_compute(
            prices=[], latest_price=None, ondemand_price=None,
            notices=c.get(TerminationEventType.TERMINATION_NOTICE, 0),
            rebalances=c.get(TerminationEventType.REBALANCE_RECOMMENDATION, 0),
        )["recommendation"]
        for pool_id, c in own_counts.items()
    }
    return PoolSignals(cooling, own)


def _signal_rows(*, pool_ids: list[str], since: datetime, risk_from: datetime, now: datetime) -> list[dict]:
    """Per pool, client and event type: the events since `risk_from` and the latest one, of the events
    in (since, now]. Both event types are named, so that the index (pool, event_type, detected_at)
    bounds the scan to the window instead of reading every event the pools ever had."""
    return list(
        TerminationEvent.objects.filter(pool_id__in=pool_ids, event_type__in=SIGNAL_TYPES,
                                        detected_at__gt=since, detected_at__lte=now)
        .order_by().values("pool_id", "client_id", "event_type")
        .annotate(in_risk=Count("id", filter=Q(detected_at__gt=risk_from)), last=Max("detected_at"))
    )


def pools_in_cooldown(*, client_id, pool_ids, now: datetime) -> set[str]:
    return pool_signals(client_id=client_id, pool_ids=pool_ids, now=now).cooling


def pool_in_cooldown(*, pool_id: str, client_id, now: datetime) -> bool:
    return pool_id in pools_in_cooldown(client_id=client_id, pool_ids=[pool_id], now=now)
