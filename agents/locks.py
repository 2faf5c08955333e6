"""Row locks taken in one fixed order (agent row first) so concurrent calls serialise instead of racing."""
from agents.models import Agent


def agent_lock(*, agent_id, **columns) -> Agent:
    """Lock the agent row for the rest of the transaction; every multi-row change starts here.
    `columns`: expressions read in the same statement (plain subqueries lock nothing but the agent row,
    e.g. decisions.client_dry_run_column())."""
    qs = Agent.objects.select_for_update()
    if columns:
        qs = qs.annotate(**columns)
    return qs.get(pk=agent_id)
