"""What the agents' frequent calls keep in Django's cache "agents" (Redis, shared by every web process
and host; without REDIS_URL none: the database answers), and what changes it: one place
(docs/ARCHITECTURE.md §8, "Caching").

Per agent, each entry with a TTL of ENTRY_SECONDS:
- `config`: the agent's settings and owner (the client id is in every entry: another client's call
  never matches). Written by `agent_config_changed` when a settings service
  commits (agents/services/agent_settings.py), removed when the agent is deleted; a poll that read the
  database adds it only if no writer did meanwhile (`cache.add`).
- `pending`: ("none", owner) once a poll found no pending command; `command_issue` overwrites it with "pending"
  when it commits and the poll that claims a command removes it, so a poll never misses a command.

Per agent and per process, with no Redis (so the same with Redis down):
- the heartbeat signature: the agent's row (owner, instance, status, type, zone, mode) as this process
  last read or wrote it, a hint only: the heartbeat that matches it is buffered, and the buffer's write
  checks it against the row again and forgets it if the row changed or the agent is gone
  (agents/services/heartbeats.py). Least recently used beyond HINTS_MAX agents. So an agent deleted
  by another process may have its heartbeats answered 200 here (and dropped) until this process's
  next buffer write, HEARTBEAT_BUFFER_SECONDS at most; in the deleting process at once 404.

Redis down or hung: every read is a miss (the database answers) and writes are skipped, behind one
circuit breaker (the circuitbreaker package): after a failure the cache is left alone for
BREAKER_RESET_SECONDS. The keys of the skipped changes are kept, and the process's first call that
reaches Redis again deletes them before anything else: an entry the outage kept unchanged is read
again from the database, not trusted. Only a process that dies before Redis is back leaves such an
entry, for at most ENTRY_SECONDS.
"""
import logging
import threading

from cachetools import LRUCache
from circuitbreaker import CircuitBreaker, CircuitBreakerError
from django.core.cache import caches
from django.db import transaction

from spotbackend.metrics import CACHE_BREAKER_OPEN, CACHE_BREAKER_OPENINGS, CACHE_LOOKUPS

logger = logging.getLogger(__name__)
ENTRY_SECONDS = 300
BREAKER_RESET_SECONDS = 5
NONE, PENDING = "none", "pending"
_FAILED = object()

# One failure opens it for BREAKER_RESET_SECONDS; it takes no lock, so the request threads of a process
# never queue behind one another's Redis call.
breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=BREAKER_RESET_SECONDS, expected_exception=Exception,
                         name="agents-cache")


@breaker
def _cache(method: str, *args):
    return getattr(caches["agents"], method)(*args)


# Keys whose change (a set or a delete) this process could not send to Redis. The next call that reaches
# Redis deletes them first, so an entry that an outage kept from being changed is never trusted after it.
_unsent: set[str] = set()
_unsent_lock = threading.Lock()


def _unsent_send() -> None:
    with _unsent_lock:  # held while Redis answers: only the first call after an outage waits on it
        if _unsent:
            _cache("delete_many", list(_unsent))
            logger.info("deleted %d cache entries whose changes were skipped while Redis was unreachable",
                        len(_unsent))
            _unsent.clear()


def _call(method: str, *args, default=None):
    recovering = breaker.failure_count > 0
    try:
        if _unsent:
            _unsent_send()
        value = _cache(method, *args)
    except CircuitBreakerError:
        _unsent_add(method, args)
        return default
    except Exception as exc:  # any Redis error: the cache is only an accelerator
        _unsent_add(method, args)
        logger.warning("cache %s failed (%s); the database answers for %s s", method, type(exc).__name__,
                       BREAKER_RESET_SECONDS)
        CACHE_BREAKER_OPENINGS.inc()
        CACHE_BREAKER_OPEN.set(1)
        return default
    if recovering:
        CACHE_BREAKER_OPEN.set(0)
    return value


def _unsent_add(method: str, args) -> None:
    """A set or delete that did not reach Redis (an `add` only fills: skipping it is harmless)."""
    keys = args[0] if method == "delete_many" else [args[0]] if method in ("set", "delete") else []
    with _unsent_lock:
        _unsent.update(keys)


def _get(agent_pk, what: str):
    """The entry, or None; counted as a hit, a miss or an error (spotbackend_cache_lookups_total)."""
    value = _call("get", _key(agent_pk, what), default=_FAILED)
    result = "error" if value is _FAILED else ("miss" if value is None else "hit")
    CACHE_LOOKUPS.labels(what, result).inc()
    return None if value is _FAILED else value


def _key(agent_pk, what: str) -> str:
    return f"agent:{agent_pk}:{what}"


def config_get(agent_pk) -> dict | None:
    return _get(agent_pk, "config")


def config_fill(agent_pk, values: dict) -> None:
    _call("add", _key(agent_pk, "config"), values, ENTRY_SECONDS)


def agent_config_changed(agent_pk, values: dict) -> None:
    """A settings service changed the agent: the entry is dropped now (a reader meanwhile reads the
    database) and holds `values` once the change commits."""
    _call("delete", _key(agent_pk, "config"))
    transaction.on_commit(lambda: _call("set", _key(agent_pk, "config"), values, ENTRY_SECONDS))


def commands_none_known(agent_pk, client_pk) -> bool:
    return _get(agent_pk, "pending") == (NONE, client_pk)


def commands_none_remember(agent_pk, client_pk) -> None:
    _call("add", _key(agent_pk, "pending"), (NONE, client_pk), ENTRY_SECONDS)


def commands_issued(agent_pk) -> None:
    """A command was queued for the agent: its polls read the database from now on, and once the
    command commits no poll can mark the agent "none" until one claims it."""
    _call("delete", _key(agent_pk, "pending"))
    transaction.on_commit(lambda: _call("set", _key(agent_pk, "pending"), PENDING, ENTRY_SECONDS))


def commands_claimed(agent_pk) -> None:
    _call("delete", _key(agent_pk, "pending"))


HINTS_MAX = 100_000
_hints = LRUCache(maxsize=HINTS_MAX)
_hints_lock = threading.Lock()  # cachetools caches are not thread-safe
_HINT_LOOKUPS = {True: CACHE_LOOKUPS.labels("heartbeat", "hit"), False: CACHE_LOOKUPS.labels("heartbeat", "miss")}


def heartbeat_hint_get(agent_pk) -> tuple | None:
    with _hints_lock:
        signature = _hints.get(agent_pk)
    _HINT_LOOKUPS[signature is not None].inc()
    return signature


def heartbeat_hint_set(agent_pk, signature: tuple) -> None:
    with _hints_lock:
        _hints[agent_pk] = signature


def heartbeat_hints_forget(agent_pks) -> None:
    with _hints_lock:
        for pk in agent_pks:
            _hints.pop(pk, None)


def agents_deleted(agent_pks) -> None:
    keys = [_key(pk, what) for pk in agent_pks for what in ("config", "pending")]
    heartbeat_hints_forget(agent_pks)
    _call("delete_many", keys)
    transaction.on_commit(lambda: _call("delete_many", keys))
