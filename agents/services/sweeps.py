"""The stale-agent sweep (docs/ARCHITECTURE.md §6): agents silent beyond AGENT_HEARTBEAT_TIMEOUT become offline."""
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from agents.models import Agent, AgentStatus, Instance, Severity, SystemEvent
from agents.states import agent_status_sources
from notifications.models import EventType
from notifications.services import webhook_events_emit

BATCH = 500


def _end_at_last_sign_of_life(*, agent_ids: list) -> int:
    """A silent agent's primary instance earns nothing after the agent's last heartbeat (its start when
    it never sent one): one UPDATE; an earlier end (a notice's termination time) is kept."""
    last_hb = Subquery(Agent.objects.filter(pk=OuterRef("agent_id")).values("last_heartbeat_at")[:1])
    cutoff = Coalesce(last_hb, F("started_at"))
    return Instance.objects.filter(agent_id__in=agent_ids, is_primary=True).update(
        ended_at=Coalesce(Least(F("ended_at"), cutoff), cutoff)
    )


def agents_mark_stale_offline(*, now: datetime | None = None, batch: int = BATCH) -> int:
    """Turn every stale agent offline with one `agent_offline` system event each; return how many.
    A few bulk statements per batch (lock, update, insert), never a save per agent; running it again
    finds nothing to do. Agent rows are locked first, as everywhere, and locked rows are skipped
    (a heartbeat in flight wins; the next sweep sees the agent again if it really is silent)."""
    now = now or timezone.now()
    timeout = settings.AGENT_HEARTBEAT_TIMEOUT
    total = 0
    for _ in range(10_000):  # bounded: each pass turns up to `batch` agents offline
        with transaction.atomic():
            rows = list(
                Agent.objects.stale(now=now)
                .select_for_update(skip_locked=connection.features.has_select_for_update_skip_locked)
                .order_by("pk")
                .values_list("pk", "client_id", "status", "last_heartbeat_at")[:batch]
            )
            if not rows:
                break
            # The one bulk move of agent status (a save per agent would not scale): the rows are
            # filtered on the table's sources of `offline` (agents/states.py), not moved by hand.
            Agent.objects.filter(
                pk__in=[r[0] for r in rows], status__in=agent_status_sources(AgentStatus.OFFLINE)
            ).update(status=AgentStatus.OFFLINE, updated_at=now)
            _end_at_last_sign_of_life(agent_ids=[r[0] for r in rows])
            SystemEvent.objects.bulk_create(
                [
                    SystemEvent(
                        agent_id=pk,
                        client_id=client_id,
                        event_type="agent_offline",
                        severity=Severity.WARNING,
                        message=(
                            f"No heartbeat since {hb.isoformat() if hb else 'registration'} "
                            f"(timeout {timeout} s): {status} -> offline"
                        ),
                        metadata={
                            "previous_status": status,
                            "last_heartbeat_at": hb.isoformat() if hb else None,
                            "timeout_seconds": timeout,
                            "source": "stale_agents_sweep",
                        },
                    )
                    for pk, client_id, status, hb in rows
                ]
            )
            webhook_events_emit(event_type=EventType.AGENT_OFFLINE, now=now, items=[
                (client_id, {"agent_id": str(pk), "previous_status": status,
                             "last_heartbeat_at": hb.isoformat() if hb else None, "timeout_seconds": timeout})
                for pk, client_id, status, hb in rows
            ])
            total += len(rows)
        if len(rows) < batch:
            break
    return total
