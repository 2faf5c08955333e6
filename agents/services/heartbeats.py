"""Heartbeats (docs/API.md §1.2, §5): the primary's heartbeat moves `last_heartbeat_at` and, rarely, the
agent's status (agents/states.py `agent_status_after_heartbeat`).

Written behind: the steady-state heartbeat is kept in Redis (agents/cache.py) and
written to the database in bulk every HEARTBEAT_FLUSH_SECONDS by a periodic task, so
`last_heartbeat_at` is accurate to that interval for the dashboard and the stale sweep. If the task
does not run, the web process that sees the oldest pending heartbeat grow older than
HEARTBEAT_FLUSH_OVERDUE_SECONDS flushes instead. See docs/PERFORMANCE.md ("The hot path")."""
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone

from django.conf import settings
from django.db import connection
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from agents.cache import (
    agents_state_changed,
    heartbeat_signature,
    heartbeat_signature_fill,
    heartbeat_signature_seen,
    heartbeat_write_behind,
    heartbeats_put_back,
    heartbeats_take,
)
from agents.models import Agent, AgentStatus, Instance, Mode
from agents.services.instances import instance_primary_end, instance_primary_resume, instance_seen
from agents.states import agent_status_after_heartbeat

logger = logging.getLogger(__name__)
BATCH = 500
SPREAD_BATCH = 100  # agents per statement when a flush is spread over time
_sleep = time.sleep
# A non-primary instance of the agent seen this recently is probably the one saying goodbye.
OVERLAP_WINDOW = timedelta(seconds=120)


def heartbeats_flush(*, spread: float = 0.0) -> int:
    """Write every pending heartbeat; return how many agents were updated. `last_heartbeat_at` only
    moves forward. A failed write returns the heartbeats to Redis for the next flush. With `spread`
    (seconds), see `heartbeats_write`."""
    return heartbeats_write(heartbeats_take(), spread=spread)


def heartbeats_write(pending: dict[str, float], *, spread: float = 0.0) -> int:
    """Write these heartbeats (agent id -> epoch seconds) in bulk; on failure they go back to Redis.

    With `spread`, the statements are paced over about that many seconds, SPREAD_BATCH agents each:
    the periodic task shares the machine with the web processes, and the same work done at once (tens
    of milliseconds of CPU in the worker and in the database, every HEARTBEAT_FLUSH_SECONDS) queued
    the agents' calls behind it (docs/PERFORMANCE.md, "Background work beside the web"). Without it
    (a sweep that must judge now, a web request flushing for a stopped worker), at once."""
    if not pending:
        return 0
    items = []
    for agent_id, at in pending.items():
        try:
            items.append((uuid.UUID(agent_id), datetime.fromtimestamp(at, tz=dt_timezone.utc)))
        except ValueError:
            continue
    items.sort(key=lambda item: item[0].int)  # rows locked in one order, as everywhere (UUID order)
    batch = SPREAD_BATCH if spread > 0 else BATCH
    slices = -(-len(items) // batch)
    pause = spread / slices if slices > 1 else 0.0
    done = 0
    try:
        for start in range(0, len(items), batch):
            if start:
                _sleep(pause)
            chunk = items[start:start + batch]
            _heartbeats_update(chunk)
            done += len(chunk)
    except Exception:
        left = {str(pk): at.timestamp() for pk, at in items[done:]}
        heartbeats_put_back(left)
        logger.exception("heartbeat flush failed; %d heartbeats kept for the next flush", len(left))
        raise
    return done


def _heartbeats_update(chunk: list[tuple[uuid.UUID, datetime]]) -> None:
    """One statement for up to BATCH agents: each row's time moves to its heartbeat's, only forward.
    Plain SQL built once per chunk: the ORM's Case/When compiled the same statement at ~0.2 ms per agent,
    a CPU burst on the worker every flush (docs/PERFORMANCE.md). On MySQL/MariaDB the rows are joined to
    the heartbeats by primary key: the portable CASE form makes the server compare every row with
    every WHEN (its CPU grew with the square of the batch, 60-70 ms a flush of 1,650 agents, which
    stalled the web processes sharing its cores every 5 s)."""
    ops, qn = connection.ops, connection.ops.quote_name
    table, column, pk = qn(Agent._meta.db_table), qn("last_heartbeat_at"), qn("id")
    ids = [Agent._meta.pk.get_db_prep_value(agent_pk, connection) for agent_pk, _ in chunk]
    pairs = [x for agent_pk, (_, at) in zip(ids, chunk) for x in (agent_pk, ops.adapt_datetimefield_value(at))]
    if connection.vendor == "mysql":
        rows = " UNION ALL ".join(["SELECT %s AS agent_id, %s AS at"] + ["SELECT %s, %s"] * (len(chunk) - 1))
        sql = (f"UPDATE {table} JOIN ({rows}) hb ON {table}.{pk} = hb.agent_id SET {table}.{column} = hb.at "
               f"WHERE {table}.{column} IS NULL OR {table}.{column} < hb.at")
        params = pairs
    else:
        case = f"CASE {pk} " + " ".join(["WHEN %s THEN %s"] * len(chunk)) + " END"
        sql = (f"UPDATE {table} SET {column} = {case} "
               f"WHERE {pk} IN ({', '.join(['%s'] * len(ids))}) AND ({column} IS NULL OR {column} < {case})")
        params = [*pairs, *ids, *pairs]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@dataclass
class HeartbeatPayload:
    status: str = ""
    instance_id: str = ""
    instance_type: str = ""
    mode: str = ""
    az: str = ""


def agent_heartbeat_fast(*, client, agent_pk, payload: HeartbeatPayload) -> bool:
    """The steady-state heartbeat: the primary instance says what the server already stores, so only
    the time moves (and never backwards, whichever host is first). Written behind through Redis when
    its signature is cached (no SQL), else one UPDATE with no read. False when anything differs: the
    caller takes `agent_heartbeat`, which knows every rule."""
    if not payload.instance_id or payload.status not in ("", AgentStatus.ONLINE, AgentStatus.DISABLED):
        return False
    now = timezone.now()
    signature = seen = None
    complete = (payload.status and payload.mode in (Mode.SPOT, Mode.ONDEMAND)
                and payload.instance_type not in ("", "unknown") and payload.az not in ("", "unknown"))
    if complete and settings.HEARTBEAT_WRITE_BEHIND:
        signature = heartbeat_signature(instance_id=payload.instance_id, status=payload.status,
                                        instance_type=payload.instance_type, az=payload.az, mode=payload.mode)
        oldest = heartbeat_write_behind(agent_pk=agent_pk, signature=signature, at=now.timestamp())
        if oldest is not None:
            if oldest > settings.HEARTBEAT_FLUSH_OVERDUE_SECONDS:
                _flush_overdue()
            return True
        seen = heartbeat_signature_seen(agent_pk=agent_pk)
    match = Q(pk=agent_pk, client=client, instance_id=payload.instance_id)
    match &= Q(status=payload.status) if payload.status else ~Q(status=AgentStatus.OFFLINE)
    if payload.instance_type and payload.instance_type != "unknown":
        match &= Q(instance_type=payload.instance_type)
    if payload.az and payload.az != "unknown":
        match &= Q(az=payload.az)
    if payload.mode in (Mode.SPOT, Mode.ONDEMAND):
        match &= Q(current_mode=payload.mode)
    moved = Agent.objects.filter(match).update(
        last_heartbeat_at=Greatest(Coalesce(F("last_heartbeat_at"), Value(now)), Value(now)), updated_at=now
    )
    if moved == 1 and signature is not None:
        # The row matched, so the stored signature is the payload's: later heartbeats go behind.
        heartbeat_signature_fill(agent_pk=agent_pk, seen=seen, signature=signature)
    return moved == 1


def _flush_overdue() -> None:
    """The periodic flush has not run for a while (worker or beat down): this request does it."""
    try:
        heartbeats_flush()
    except Exception:  # the heartbeat itself is recorded; the next request or task retries the flush
        logger.exception("overdue heartbeat flush failed")


def agent_heartbeat(*, agent: Agent, payload: HeartbeatPayload) -> str:
    """Record a heartbeat. Returns what was done: 'primary', 'non_primary' or 'offline_ignored'.

    Missing or null fields never overwrite stored ones; a non-primary instance never re-points the
    agent or changes its status (docs/API.md §5)."""
    now = timezone.now()
    if payload.instance_id and payload.instance_id != agent.instance_id:
        if instance_seen(agent=agent, instance_id=payload.instance_id, at=now) is None:
            return "unknown_instance"
        return "non_primary"

    if payload.status == AgentStatus.OFFLINE and not payload.instance_id:
        # The goodbye of a shutting-down agent carries no instance id. If another instance of this
        # agent was heard a moment ago (even one whose switch report says it terminated itself: the
        # process says goodbye seconds later), it is that one leaving, not the primary.
        other_alive = (
            Instance.objects.filter(agent=agent, last_seen_at__gte=now - OVERLAP_WINDOW)
            .exclude(instance_id=agent.instance_id)
            .exists()
        )
        if other_alive:
            return "offline_ignored"

    update: dict = {"last_heartbeat_at": Greatest(Coalesce(F("last_heartbeat_at"), Value(now)), Value(now))}
    if payload.instance_type and payload.instance_type != "unknown":
        update["instance_type"] = payload.instance_type
    if payload.az and payload.az != "unknown":
        update["az"] = payload.az
    if payload.mode in (Mode.SPOT, Mode.ONDEMAND):
        update["current_mode"] = payload.mode
    # The move is decided and checked by the state machine; it is written with the one UPDATE below.
    status = agent_status_after_heartbeat(agent=agent, reported=payload.status)
    if status != agent.status:
        update["status"] = status
    # One UPDATE on the hot path; fields not in `update` keep their stored values.
    Agent.objects.filter(pk=agent.pk).update(updated_at=now, **update)
    if "status" in update:
        # Rare: the goodbye ends the primary's paid interval; a return from offline reopens it.
        if update["status"] == AgentStatus.OFFLINE:
            instance_primary_end(agent=agent, at=now)
        elif agent.status == AgentStatus.OFFLINE:
            instance_primary_resume(agent=agent)
    if any(getattr(agent, key) != value for key, value in update.items() if key != "last_heartbeat_at"):
        agents_state_changed(agent_pks=[agent.pk])  # only a real change: the agent's cached state is read again
    update["last_heartbeat_at"] = max(agent.last_heartbeat_at or now, now)
    for key, value in update.items():
        setattr(agent, key, value)
    return "primary"
