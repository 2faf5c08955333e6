"""Heartbeats written behind: the steady-state heartbeat is kept in Redis (agents/cache.py) and
written to the database in bulk every HEARTBEAT_FLUSH_SECONDS by a periodic task, so
`last_heartbeat_at` is accurate to that interval for the dashboard and the stale sweep. If the task
does not run, the web process that sees the oldest pending heartbeat grow older than
HEARTBEAT_FLUSH_OVERDUE_SECONDS flushes instead. See docs/PERFORMANCE.md ("The hot path")."""
import logging
import uuid
from datetime import datetime, timezone as dt_timezone

from django.db.models import Case, F, Value, When
from django.db.models.functions import Coalesce, Greatest

from agents.cache import heartbeats_put_back, heartbeats_take
from agents.models import Agent

logger = logging.getLogger(__name__)
BATCH = 500


def heartbeats_flush() -> int:
    """Write every pending heartbeat; return how many agents were updated. `last_heartbeat_at` only
    moves forward. A failed write returns the heartbeats to Redis for the next flush."""
    return heartbeats_write(heartbeats_take())


def heartbeats_write(pending: dict[str, float]) -> int:
    """Write these heartbeats (agent id -> epoch seconds) in bulk; on failure they go back to Redis."""
    if not pending:
        return 0
    items = []
    for agent_id, at in pending.items():
        try:
            items.append((uuid.UUID(agent_id), datetime.fromtimestamp(at, tz=dt_timezone.utc)))
        except ValueError:
            continue
    items.sort()  # rows locked in one order, as everywhere
    done = 0
    try:
        for start in range(0, len(items), BATCH):
            chunk = items[start:start + BATCH]
            when = Case(*[When(pk=pk, then=Value(at)) for pk, at in chunk])
            Agent.objects.filter(pk__in=[pk for pk, _ in chunk]).update(
                last_heartbeat_at=Greatest(Coalesce(F("last_heartbeat_at"), when), when)
            )
            done += len(chunk)
    except Exception:
        left = {str(pk): at.timestamp() for pk, at in items[done:]}
        heartbeats_put_back(left)
        logger.exception("heartbeat flush failed; %d heartbeats kept for the next flush", len(left))
        raise
    return done
