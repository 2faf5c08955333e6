"""Row locks taken in one fixed order (agent row first) so concurrent calls serialise instead of racing."""
from agents.models import Agent


def agent_lock(*, agent_id, **columns) -> Agent:
    """Lock the agent row for the rest of the transaction; every multi-row change starts here.
    `columns`: name -> subquery read in the same statement and set on the agent (a subquery in the
    select list locks nothing but the agent row, e.g. decisions.client_dry_run_column()).
    Agent.DoesNotExist when there is no such agent."""
    return Agent.objects.select_for_update().annotate(**columns).get(pk=agent_id)

