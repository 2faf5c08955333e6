"""Heartbeats (docs/API.md §1.2, §5): the primary's heartbeat moves `last_heartbeat_at` and, rarely, the
agent's status (agents/states.py `agent_status_after_heartbeat`).

A heartbeat that changes nothing but the time is buffered in its web process and written with the
others by a background thread every HEARTBEAT_BUFFER_SECONDS (docs/ARCHITECTURE.md §8): the dashboard
and the stale sweep see `last_heartbeat_at` up to that late, and a web process killed with SIGKILL
loses at most that much of last-seen times. Every other heartbeat (a new status, instance, type, zone
or mode) is written before it is answered. "Unchanged" is judged against this process's hint of the
row (agents/cache.py); when another process or a service changed the row meanwhile, the buffer's
write finds it out and applies the heartbeat with every rule, within HEARTBEAT_BUFFER_SECONDS."""
import atexit
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from agents import cache
from agents.models import Agent, AgentStatus, Instance, Mode
from agents.selectors import agent_get_for_client, agent_owned_values
from agents.services.instances import instance_primary_end, instance_primary_resume, instance_seen
from agents.states import agent_status_after_heartbeat
from spotbackend.api import parse_uuid
from spotbackend.exceptions import ApplicationError

logger = logging.getLogger(__name__)
# A non-primary instance of the agent seen this recently is probably the one saying goodbye.
OVERLAP_WINDOW = timedelta(seconds=120)


@dataclass
class HeartbeatPayload:
    status: str = ""
    instance_id: str = ""
    instance_type: str = ""
    mode: str = ""
    az: str = ""


class _Buffer:
    """This process's unwritten heartbeats (agent id -> (time to the second, payload, signature)) and the
    thread that writes them. Started on first use in each process (gunicorn forks its workers)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.pending: dict = {}
        self.pid = None

    def add(self, agent_pk, at: datetime, payload: HeartbeatPayload, signature: tuple) -> None:
        at = at.replace(microsecond=0)
        with self.lock:
            if self.pid != os.getpid():
                self.pid, self.pending = os.getpid(), {}
                threading.Thread(target=self._run, name="heartbeat-buffer", daemon=True).start()
            if agent_pk not in self.pending or self.pending[agent_pk][0] < at:
                self.pending[agent_pk] = (at, payload, signature)

    def take(self) -> dict:
        with self.lock:
            taken, self.pending = self.pending, {}
        return taken

    def put_back(self, pending: dict) -> None:
        with self.lock:
            for agent_pk, entry in pending.items():
                if agent_pk not in self.pending or self.pending[agent_pk][0] < entry[0]:
                    self.pending[agent_pk] = entry

    def _run(self) -> None:
        while True:
            time.sleep(settings.HEARTBEAT_BUFFER_SECONDS or 1)
            try:
                heartbeats_flush()
            except Exception:  # kept for the next round (put back by heartbeats_flush)
                logger.exception("writing buffered heartbeats failed")
            finally:
                close_old_connections()


_buffer = _Buffer()


SIGNATURE_FIELDS = ("client_id", "instance_id", "status", "instance_type", "az", "current_mode")


def heartbeats_flush() -> int:
    """Write this process's buffered heartbeats now; return how many agents. A time is written only
    while the row still has the signature it was buffered against, and only forward; a heartbeat whose
    agent changed meanwhile takes `agent_heartbeat`, which knows every rule. A few statements per round:
    one read of the rows, one UPDATE per second of heartbeat times. On failure they stay buffered for
    the next round. Called by the buffer's thread, at process exit, and by tests."""
    pending = _buffer.take()
    if not pending:
        return 0
    try:
        rows = Agent.objects.filter(pk__in=list(pending)).values_list("pk", *SIGNATURE_FIELDS)
        current = {pk: tuple(signature) for pk, *signature in rows}
        by_second: dict[datetime, list] = {}
        changed, stale = [], []
        for agent_pk, (at, payload, signature) in pending.items():
            if current.get(agent_pk) == signature:
                by_second.setdefault(at, []).append(agent_pk)
                continue
            stale.append(agent_pk)  # this process's hint no longer matches the row
            if agent_pk in current:  # (else deleted meanwhile)
                changed.append((agent_pk, payload))
        cache.heartbeat_hints_forget(stale)
        for at in sorted(by_second):  # rows in primary-key order within each statement, as everywhere
            Agent.objects.filter(Q(last_heartbeat_at__isnull=True) | Q(last_heartbeat_at__lt=at),
                                 pk__in=sorted(by_second[at], key=lambda pk: pk.int)).update(last_heartbeat_at=at)
    except Exception:
        _buffer.put_back(pending)
        raise
    for agent_pk, payload in changed:
        agent = Agent.objects.filter(pk=agent_pk).first()
        if agent is None:
            continue
        try:
            agent_heartbeat(agent=agent, payload=payload)
        except ApplicationError:  # e.g. a move the state machine refuses now: dropped
            logger.warning("buffered heartbeat of agent %s not applied", agent_pk, exc_info=True)
    return len(pending)


@atexit.register
def _flush_at_exit() -> None:
    if _buffer.pending:
        try:
            heartbeats_flush()
        except Exception:
            logger.exception("writing buffered heartbeats at exit failed")


def _signature(agent: Agent) -> tuple:
    return tuple(getattr(agent, name) for name in SIGNATURE_FIELDS)


def _reported_signature(client, payload: HeartbeatPayload) -> tuple | None:
    """What the row holds if this heartbeat changes nothing but the time; None for a heartbeat that
    does not say everything (the row decides)."""
    if (payload.instance_id and payload.status in (AgentStatus.ONLINE, AgentStatus.DISABLED)
            and payload.instance_type not in ("", "unknown") and payload.az not in ("", "unknown")
            and payload.mode in (Mode.SPOT, Mode.ONDEMAND)):
        return (client.pk, payload.instance_id, payload.status, payload.instance_type, payload.az, payload.mode)
    return None


def agent_heartbeat_record(*, client, agent_id, payload: HeartbeatPayload) -> str:
    """The heartbeat of the caller's own agent (NotFoundError otherwise). One whose complete signature
    is the row's (known from the cache, agents/cache.py, else read) changes nothing but the time: it is
    buffered. Any other is written now by `agent_heartbeat`, which knows every rule."""
    reported = _reported_signature(client, payload) if settings.HEARTBEAT_BUFFER_SECONDS > 0 else None
    pk = parse_uuid(agent_id)
    if reported is not None and pk is not None:
        stored = cache.heartbeat_hint_get(pk)
        if stored != reported:
            row = agent_owned_values(client=client, agent_id=pk, fields=SIGNATURE_FIELDS[1:])
            stored = (client.pk, *(row[name] for name in SIGNATURE_FIELDS[1:]))
            if stored == reported:
                cache.heartbeat_hint_set(pk, stored)
        if stored == reported:
            _buffer.add(pk, timezone.now(), payload, reported)
            return "primary"
    agent = agent_get_for_client(client=client, agent_id=agent_id)
    outcome = agent_heartbeat(agent=agent, payload=payload)
    if outcome == "primary":
        cache.heartbeat_hint_set(agent.pk, _signature(agent))
    return outcome


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
    update["last_heartbeat_at"] = max(agent.last_heartbeat_at or now, now)
    for key, value in update.items():
        setattr(agent, key, value)
    return "primary"
