"""Thin periodic Celery tasks of the agents app (scheduled by django-celery-beat, see spotbackend/schedule.py).
Kept apart from agents/tasks.py (notifications); registered with the worker through CELERY_IMPORTS."""
from celery import shared_task

from agents.services.replica_sweep import replicas_sweep
from agents.services.retention import price_history_prune
from agents.services.risk import pool_risk_analyze_all
from agents.services.sweeps import agents_mark_stale_offline


@shared_task(name="agents.periodic.stale_agents_sweep")
def stale_agents_sweep() -> dict:
    """Agents silent beyond AGENT_HEARTBEAT_TIMEOUT become offline, each with a system event."""
    return {"marked_offline": agents_mark_stale_offline()}


@shared_task(name="agents.periodic.pool_risk_analysis")
def pool_risk_analysis() -> dict:
    """Score every spot pool; alert once when one enters `avoid`."""
    return pool_risk_analyze_all()


@shared_task(name="agents.periodic.replica_lifecycle_sweep")
def replica_lifecycle_sweep() -> dict:
    """No replica dead ends: stuck replicas end with a reason, overdue ready emergency replicas are promoted."""
    return replicas_sweep()


@shared_task(name="agents.periodic.price_history_retention")
def price_history_retention() -> dict:
    """Delete price samples beyond SPOT_/ONDEMAND_PRICE_RETENTION_DAYS, in batches."""
    return price_history_prune()
