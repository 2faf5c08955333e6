"""Switch reports (docs/API.md §1.6) and the one definition of savings_impact (docs/ARCHITECTURE.md §5)."""
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from agents.locks import agent_lock
from agents.models import Agent, Command, CommandStatus, Instance, InstanceState, Mode, Switch, SwitchTrigger
from agents.services.events import system_event_log
from agents.services.instances import instance_make_primary
from agents.services.pools import pool_get_or_create, pool_id_for, pool_parse_id, region_of_az
from agents.services.ondemand import ondemand_price_get
from agents.services.pricing import V4_FALLBACK_ONDEMAND, pool_price_at
from agents.services.replicas import replica_promotion_settle
from spotbackend.payloads import json_capped


@dataclass
class SwitchSide:
    instance_id: str = ""
    instance_type: str = ""
    region: str = ""
    az: str = ""
    ami_id: str = ""
    mode: str = ""
    pool_id: str = ""


@dataclass
class SwitchReport:
    old: SwitchSide
    new: SwitchSide
    on_demand_price: Decimal | None = None
    old_spot_price: Decimal | None = None
    new_spot_price: Decimal | None = None
    trigger: str = "manual"
    initiated_at: datetime | None = None
    completed_at: datetime | None = None
    old_terminated: bool = False
    raw: dict = field(default_factory=dict)


def savings_impact(*, old_hourly: Decimal | None, new_hourly: Decimal | None) -> Decimal:
    """USD per hour saved by the switch: old hourly price minus new hourly price."""
    if old_hourly is None or new_hourly is None:
        return Decimal("0")
    return Decimal(old_hourly) - Decimal(new_hourly)


def _hourly(side: SwitchSide, reported_spot: Decimal | None, on_demand: Decimal | None, at: datetime):
    if side.mode == Mode.ONDEMAND:
        return on_demand
    if side.mode == Mode.SPOT:
        if reported_spot:  # v3.2.0 sends 0.0 for "unknown"
            return reported_spot
        if side.pool_id:
            return pool_price_at(pool_id=side.pool_id, at=at)
    return None


def _side_pool_id(side: SwitchSide) -> str:
    if side.mode != Mode.SPOT:
        return ""
    if side.pool_id and pool_parse_id(side.pool_id):
        return side.pool_id
    if side.instance_type and side.az:
        return pool_id_for(instance_type=side.instance_type, az=side.az)
    return ""


def _switch_already_recorded(*, agent: Agent, report: SwitchReport) -> Switch | None:
    """A switch report is keyed on (agent, old instance, new instance): EC2 never reuses an instance
    id, so the same pair again is a replay (a proxy, a restart), answered with the first record and
    changing nothing. The caller holds the agent lock, so two copies at once cannot both pass."""
    if not (report.old.instance_id and report.new.instance_id):
        return None
    return (
        Switch.objects.filter(agent=agent, old_instance_id=report.old.instance_id,
                              new_instance_id=report.new.instance_id)
        .order_by("created_at")
        .first()
    )


@transaction.atomic
def switch_report_record(*, agent: Agent, report: SwitchReport) -> Switch:
    now = timezone.now()
    agent = agent_lock(agent_id=agent.pk)
    old, new = report.old, report.new
    replayed = _switch_already_recorded(agent=agent, report=report)
    if replayed is not None:
        return replayed
    old.pool_id, new.pool_id = _side_pool_id(old), _side_pool_id(new)
    instance_type = new.instance_type or old.instance_type or agent.instance_type
    region = new.region or old.region or region_of_az(new.az) or agent.region

    # Prefer a real on-demand quote over the agent's fallback constant.
    on_demand = report.on_demand_price
    known = ondemand_price_get(instance_type=instance_type, region=region) if instance_type and region else None
    if known is not None and (on_demand is None or on_demand == V4_FALLBACK_ONDEMAND or on_demand <= 0):
        on_demand = known
    at = report.initiated_at or now
    old_price = _hourly(old, report.old_spot_price, on_demand, at)
    new_price = _hourly(new, report.new_spot_price, on_demand, report.completed_at or at)

    command = (
        Command.objects.filter(agent=agent, delivered_at__isnull=False)
        .filter(status__in=[CommandStatus.DELIVERED, CommandStatus.EXPIRED, CommandStatus.SUCCEEDED])
        .order_by("-delivered_at")
        .first()
    )
    switch = Switch.objects.create(
        agent=agent,
        client_id=agent.client_id,
        command=command,
        old_instance_id=old.instance_id,
        new_instance_id=new.instance_id,
        old_mode=old.mode if old.mode in Mode.values else Mode.UNKNOWN,
        new_mode=new.mode if new.mode in Mode.values else Mode.UNKNOWN,
        old_az=old.az,
        new_az=new.az,
        old_pool_id=old.pool_id,
        new_pool_id=new.pool_id,
        on_demand_price=on_demand,
        old_price=old_price,
        new_price=new_price,
        savings_impact=savings_impact(old_hourly=old_price, new_hourly=new_price),
        trigger_type=switch_trigger_of(report.trigger),
        initiated_at=at,
        completed_at=report.completed_at or now,
        report=json_capped(report.raw),
    )

    # Move the primary only to an instance this agent has never had: a late report from an old
    # instance (the new one already registered, or moved on since) must not re-point the agent.
    if new.instance_id and not Instance.objects.filter(agent=agent, instance_id=new.instance_id).exists():
        pool = pool_get_or_create(pool_id=new.pool_id) if new.pool_id else None
        instance_make_primary(
            agent=agent,
            instance_id=new.instance_id,
            at=report.completed_at or now,
            attrs={
                "instance_type": new.instance_type,
                "region": region,
                "az": new.az,
                "ami_id": new.ami_id,
                "mode": new.mode if new.mode in (Mode.SPOT, Mode.ONDEMAND) else "",
                "pool": pool,
            },
            old_state=InstanceState.TERMINATED if report.old_terminated else InstanceState.REPLACED,
        )
        replica_promotion_settle(agent=agent, instance_id=new.instance_id, mode=new.mode if new.mode in (
            Mode.SPOT, Mode.ONDEMAND) else "", pool_id=new.pool_id or None, now=now)
        agent.save()
    elif report.old_terminated and old.instance_id:
        Instance.objects.filter(agent=agent, instance_id=old.instance_id, is_primary__isnull=True).update(
            state=InstanceState.TERMINATED
        )
    system_event_log(
        agent=agent,
        event_type="switch_completed",
        message=f"Switched {old.instance_id} ({old.mode}) -> {new.instance_id} ({new.mode}), "
        f"impact {switch.savings_impact} USD/h",
        metadata={"switch_id": str(switch.pk)},
    )
    return switch


def switch_trigger_of(label: str | None) -> str:
    """The stored trigger for the agent's label: one of SwitchTrigger, `other` for a label outside it
    (the full report, kept beside the switch, still has the agent's own word)."""
    label = (label or SwitchTrigger.MANUAL).strip().lower()
    return label if label in SwitchTrigger.values else SwitchTrigger.OTHER
