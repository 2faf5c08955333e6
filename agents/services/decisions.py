"""Decisions (issue 9, item 8): every automatic decision is stored here, once, with its inputs and reason
in typed columns; the admin shows them on the agent's page and the dashboard lists them
(GET /api/client/{client_id}/decisions). Dry-run (item 7) is read here too: one place says whether the
server may tell an agent what it decided."""
from datetime import datetime

from django.db.models import OuterRef, Subquery

from agents.models import Agent, Decision
from spotbackend.metrics import decisions_count

# The name under which agent_lock(..., client_dry_run=client_dry_run_column()) reads the flag.
DRY_RUN_COLUMN = "client_dry_run"


def client_dry_run_column() -> Subquery:
    """The client's dry-run flag as a column of the agent's locked row (agents.locks.agent_lock): it
    saves a query (a subquery in the select list: it does not lock the client row)."""
    from clients.models import Client

    return Subquery(Client.objects.filter(pk=OuterRef("client_id")).values("dry_run")[:1])


def client_dry_run(*, agent: Agent) -> bool:
    """Whether the agent's client runs in dry-run: decide and record, tell the agent nothing."""
    from clients.models import Client

    # Read from the row, not from the request's client: that one may come from the token cache, a
    # little stale. Read with the agent lock when the caller asked for it (DRY_RUN_COLUMN).
    if hasattr(agent, DRY_RUN_COLUMN):
        return bool(getattr(agent, DRY_RUN_COLUMN))
    return bool(Client.objects.filter(pk=agent.client_id).values_list("dry_run", flat=True).first())


def decision_record(*, agent: Agent, kind: str, action: str, **inputs) -> Decision:
    """Store one decision (its inputs: decision_build)."""
    decision = decision_build(agent=agent, kind=kind, action=action, **inputs)
    decision.save(force_insert=True)
    decisions_count([decision])
    return decision


def decisions_record(decisions: list[Decision]) -> list[Decision]:
    """Store several built decisions (decision_build) in one INSERT, in the order given."""
    Decision.objects.bulk_create(decisions)
    decisions_count(decisions)
    return decisions


def decision_build(
    *,
    agent: Agent,
    kind: str,
    action: str,
    reason: str = "",
    dry_run: bool = False,
    instance_id: str = "",
    from_pool_id: str | None = "",
    target_mode: str = "",
    target_pool=None,
    target_pool_id: str = "",
    deadline: datetime | None = None,
    termination_event=None,
    replica_id=None,
    command_id=None,
) -> Decision:
    """One decision, not saved yet. `target_pool` (a SpotPool) fills the target's id, price and risk at
    decision time. `dry_run`: it was decided but not carried out towards the agent (the client's dry-run)."""
    return Decision(
        client_id=agent.client_id,
        agent=agent,
        kind=kind,
        action=action[:64],
        dry_run=dry_run,
        reason=reason[:4000],
        instance_id=(instance_id or "")[:64],
        from_pool_id=from_pool_id or "",
        target_mode=target_mode or "",
        target_pool_id=(target_pool.pk if target_pool is not None else target_pool_id) or "",
        target_price=target_pool.latest_price if target_pool is not None else None,
        target_risk=(target_pool.risk_recommendation if target_pool is not None else "") or "",
        deadline=deadline,
        termination_event=termination_event if getattr(termination_event, "pk", None) else None,
        replica_id=replica_id or None,
        command_id=command_id or None,
    )

