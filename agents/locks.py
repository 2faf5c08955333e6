"""Row locks taken in one fixed order (agent row first) so concurrent calls serialise instead of racing."""
from agents.models import Agent


def agent_lock(*, agent_id) -> Agent:
    """Lock the agent row for the rest of the transaction; every multi-row change starts here."""
    return Agent.objects.select_for_update().get(pk=agent_id)
