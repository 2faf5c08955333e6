"""Row locks taken in one fixed order (agent row first) so concurrent calls serialise instead of racing."""
from django.db import connection

from agents.models import Agent
from spotbackend.db.rows import ModelRows

_agent_rows = ModelRows(Agent)


def agent_lock(*, agent_id, **columns: tuple[str, list]) -> Agent:
    """Lock the agent row for the rest of the transaction; every multi-row change starts here.
    `columns`: name -> (plain SQL expression, params) read in the same statement and set on the agent
    (scalar subqueries lock nothing but the agent row, e.g. decisions.client_dry_run_column()).
    Plain SQL worked out once (spotbackend/db/rows.py): every write path of an agent starts here.
    Agent.DoesNotExist when there is no such agent."""
    pk = Agent._meta.pk.get_db_prep_value(Agent._meta.pk.to_python(agent_id), connection)
    found = _agent_rows.fetch(f"{_agent_rows.table()}.{connection.ops.quote_name('id')} = %s", [pk],
                              extra=columns, for_update=True)
    if not found:
        raise Agent.DoesNotExist("Agent matching query does not exist.")
    return found[0]


def agent_column(sql: str) -> str:
    """`sql` with `{agent}` standing for the agent table (for `agent_lock` columns)."""
    return sql.format(agent=_agent_rows.table())


def agent_save_fields(*, agent: Agent, fields: list[str]) -> None:
    """`agent.save(update_fields=fields)` in plain SQL (every termination notice of a burst saves its agent)."""
    _agent_rows.update(agent, fields)
