"""What the agent's hot path caches, and when each entry is invalidated: one place.

- agent id -> owner client id, in each process and in Redis (an agent belongs to one client forever);
- the agent's own part of its `config`, in Redis, invalidated whenever the agent row is saved;
- "this agent has no pending command", in Redis, invalidated whenever a command is issued;
- the agent's heartbeat signature (primary instance, status, type, AZ, mode), in Redis, so that a
  heartbeat that changes nothing is written behind: kept in a Redis hash and flushed to the
  database in bulk (agents/services/heartbeats.py).
Redis entries are filled with a compare-and-set and have a TTL, so a lost invalidation (Redis
unreachable at that moment) is bounded by the TTL. See docs/PERFORMANCE.md ("The hot path").
"""
import json
import logging
import threading
import time
import uuid

from django.conf import settings

from spotbackend.hotcache import (
    HotScript,
    LocalCache,
    hot_fill,
    hot_get,
    hot_changed_on_commit,
    hot_pipeline,
    hot_value,
)

logger = logging.getLogger(__name__)
MAX_OWNERS = 200_000
NO_COMMAND = "none"

_owners: dict[uuid.UUID, uuid.UUID] = {}
_owners_lock = threading.Lock()
_owners_preloaded = threading.Event()


def _owner_key(agent_pk) -> str:
    return f"sb:agent:{agent_pk}:owner"


def agent_owner_get(*, agent_pk: uuid.UUID):
    """The client id that owns this agent, or None (unknown agent): this process's map, then Redis
    (shared by every process and host), then one query. An agent belongs to one client forever, so
    neither level is ever invalidated, only forgotten when the agent is deleted."""
    owner = _owners.get(agent_pk)
    if owner is not None:
        return owner
    if not _owners_preloaded.is_set():
        _owners_preload()
        owner = _owners.get(agent_pk)
        if owner is not None:
            return owner
    cached = hot_value(hot_get(_owner_key(agent_pk)))
    if cached is not None:
        owner = uuid.UUID(cached)
    else:
        from agents.models import Agent

        owner = Agent.objects.filter(pk=agent_pk).values_list("client_id", flat=True).first()
        if owner is None:
            return None
        agent_owner_remember(agent_pk=agent_pk, client_pk=owner, shared=True)
    _remember_locally(agent_pk, owner)
    return owner


def agent_owner_remember(*, agent_pk, client_pk, shared: bool = True) -> None:
    """Record a known owner (e.g. at registration) so no process has to ask the database."""
    _remember_locally(agent_pk, client_pk)
    if shared:
        hot_fill(_owner_key(agent_pk), seen=None, value=str(client_pk), ttl=settings.AGENT_OWNER_CACHE_TTL)


def _owners_preload() -> None:
    """Every agent's owner in one query, once per process (owners never change): a process that
    starts does not ask Redis once per agent. Agents registered later are read one by one."""
    if not _owners_lock.acquire(blocking=False):
        return  # another thread is loading
    try:
        if _owners_preloaded.is_set():
            return
        _owners_preloaded.set()
        from agents.models import Agent

        try:
            rows = list(Agent.objects.order_by().values_list("id", "client_id")[:MAX_OWNERS // 2])
        except Exception:  # the database is unavailable: owners are read one by one
            logger.exception("preloading agent owners failed")
            return
        if len(_owners) + len(rows) >= MAX_OWNERS:
            _owners.clear()
        _owners.update(rows)
    finally:
        _owners_lock.release()


def _remember_locally(agent_pk, client_pk) -> None:
    with _owners_lock:
        if len(_owners) >= MAX_OWNERS:
            _owners.clear()
        _owners[agent_pk] = client_pk


def agent_owner_forget(*, agent_pk: uuid.UUID) -> None:
    _owners.pop(agent_pk, None)


def _config_key(agent_pk) -> str:
    return f"sb:agent:{agent_pk}:config"


def _command_key(agent_pk) -> str:
    return f"sb:agent:{agent_pk}:nocmd"


# --- config -------------------------------------------------------------------------------------

CONFIG_FIELDS = ("enabled", "auto_switch_enabled", "auto_terminate_enabled", "manual_replica_enabled", "replica_count")


def _load_configs() -> dict:
    from agents.models import Agent

    return {row["id"]: {name: row[name] for name in CONFIG_FIELDS}
            for row in Agent.objects.order_by().values("id", *CONFIG_FIELDS).iterator(chunk_size=5000)}


def _agent_entry(name: str) -> tuple:
    """The local key of one agent's entry, from the name a change logs (`LocalCache.forget`)."""
    return (uuid.UUID(name),)


def _agent_entries(name: str) -> tuple:
    pk = uuid.UUID(name)
    return pk, ("facts", pk)


# Each is told of one agent's change by name (`forget`), of a change of many or unknown ones by its epoch.
_configs = LocalCache("sb:epoch:config", loader=_load_configs, forget_key=_agent_entry)


def agent_config_cached(*, agent_pk) -> tuple[dict | None, str | None]:
    """(the cached settings part of the agent's config, or None; what the key held, for the fill)."""
    values = _configs.get(agent_pk)
    if values is not None:
        return values, None
    raw = hot_get(_config_key(agent_pk))
    value = hot_value(raw)
    if value is None:
        return None, raw
    values = json.loads(value)
    _configs.put(agent_pk, values)
    return values, raw


def agent_config_fill(*, agent_pk, seen: str | None, values: dict) -> None:
    if hot_fill(_config_key(agent_pk), seen=seen, value=json.dumps(values), ttl=settings.AGENT_CONFIG_CACHE_TTL):
        _configs.put(agent_pk, values)


# --- open commands ------------------------------------------------------------------------------

def _load_no_commands() -> dict:
    """True for every agent without a pending command (what a poll would find in the database)."""
    from agents.models import Agent, Command, CommandStatus

    pending = set(Command.objects.filter(is_open=True, status=CommandStatus.PENDING).order_by()
                  .values_list("agent_id", flat=True))
    return {pk: True for pk in Agent.objects.order_by().values_list("id", flat=True).iterator(chunk_size=5000)
            if pk not in pending}


_no_commands = LocalCache("sb:epoch:commands", loader=_load_no_commands, forget_key=_agent_entry)


def agent_has_no_command_cached(*, agent_pk) -> tuple[bool, str | None]:
    """(True if the agent is known to have no pending command, what the key held)."""
    if _no_commands.get(agent_pk):
        return True, None
    raw = hot_get(_command_key(agent_pk))
    none = hot_value(raw) == NO_COMMAND
    if none:
        _no_commands.put(agent_pk, True)
    return none, raw


def agent_no_command_fill(*, agent_pk, seen: str | None) -> None:
    if hot_fill(_command_key(agent_pk), seen=seen, value=NO_COMMAND, ttl=settings.AGENT_NO_COMMAND_CACHE_TTL):
        _no_commands.put(agent_pk, True)


def agent_commands_changed(*, agent_pk) -> None:
    """A command was saved for the agent: its next poll must read the database."""
    hot_changed_on_commit(keys=[_command_key(agent_pk)], forget={_no_commands: [agent_pk]})


# --- heartbeats written behind --------------------------------------------------------------------

HEARTBEATS_PENDING = "sb:hb:pending"  # hash: agent id -> latest heartbeat time (epoch seconds)
HEARTBEATS_SINCE = "sb:hb:since"  # when the oldest heartbeat still pending arrived

# Record the heartbeat only if the stored signature matches; answer how old the oldest pending one is.
_WRITE_BEHIND = HotScript("""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local prev = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
if tonumber(ARGV[3]) > prev then redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) end
redis.call('SET', KEYS[3], ARGV[3], 'NX')
return math.floor(tonumber(ARGV[3]) - tonumber(redis.call('GET', KEYS[3])))
""")


def _signature_key(agent_pk) -> str:
    return f"sb:agent:{agent_pk}:hbsig"


def heartbeat_signature(*, instance_id: str, status: str, instance_type: str, az: str, mode: str) -> str:
    return "|".join((instance_id, status, instance_type, az, mode))


AGENT_FACTS = ("client_id", "instance_id", "current_mode", "current_pool_id", "region")


def _load_signatures() -> dict:
    """Per agent: its heartbeat signature when its row has one (as `agent_cache_warm` fills it), and
    the facts a pricing report reads (`agent_facts_get`). One query for both."""
    from agents.models import Agent

    loaded = {}
    rows = Agent.objects.order_by().values_list("id", "status", "instance_type", "az", *AGENT_FACTS)
    for pk, status, instance_type, az, *facts in rows.iterator(chunk_size=5000):
        facts = dict(zip(AGENT_FACTS, facts))
        loaded[("facts", pk)] = facts
        if facts["instance_id"] and instance_type and az and facts["current_mode"] in ("spot", "ondemand"):
            loaded[pk] = heartbeat_signature(instance_id=facts["instance_id"], status=status,
                                             instance_type=instance_type, az=az, mode=facts["current_mode"])
    return loaded

_signatures = LocalCache("sb:epoch:agents", loader=_load_signatures, forget_key=_agent_entries)


def agent_facts_get(*, agent_pk) -> dict | None:
    """The agent's primary instance, mode, pool and region (what a pricing report is checked against),
    or None (unknown agent). Kept per process beside the heartbeat signatures and dropped with them:
    any save of the agent row or state change drops them everywhere within HOT_LOCAL_CHECK_SECONDS.
    A stale answer within that second is harmless there: the mode is written under the agent lock."""
    key = ("facts", agent_pk)
    facts = _signatures.get(key)  # reads the epoch before the database: a change meanwhile drops the fill
    if facts is None:
        from agents.models import Agent

        facts = Agent.objects.filter(pk=agent_pk).values(*AGENT_FACTS).first()
        if facts is None:
            return None
        _signatures.put(key, facts)
    return facts
_buffer: dict[str, float] = {}
_buffer_lock = threading.Lock()
_buffer_since = [float("inf")]

# Hand buffered heartbeats to the pending hash (a newer time wins); answer the oldest pending's age.
_PUSH = HotScript("""
for i = 1, #ARGV - 2, 2 do
  local prev = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if tonumber(ARGV[i + 1]) > prev then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
redis.call('SET', KEYS[2], ARGV[#ARGV - 1], 'NX')
return math.floor(tonumber(ARGV[#ARGV]) - tonumber(redis.call('GET', KEYS[2])))
""")


def heartbeat_write_behind(*, agent_pk, signature: str, at: float) -> int | None:
    """Keep the heartbeat for the bulk flush when the stored signature matches. Returns the age in
    seconds of the oldest pending heartbeat, or None (no match, or Redis unavailable: write it now).
    A signature this process already confirmed is buffered here and handed to Redis with the others
    every HEARTBEAT_BUFFER_SECONDS; otherwise one Lua call checks it and records the heartbeat."""
    if _signatures.get(agent_pk) == signature:
        with _buffer_lock:
            _buffer[str(agent_pk)] = max(at, _buffer.get(str(agent_pk), 0.0))
            _buffer_since[0] = min(_buffer_since[0], at)
            due = at - _buffer_since[0] >= settings.HEARTBEAT_BUFFER_SECONDS
        return heartbeats_push() if due else 0
    age = _WRITE_BEHIND(keys=[_signature_key(agent_pk), HEARTBEATS_PENDING, HEARTBEATS_SINCE],
                        args=[signature, str(agent_pk), repr(at)], default=-1)
    if age is None or age < 0:
        return None
    _signatures.put(agent_pk, signature)
    return int(age)


def heartbeats_push() -> int:
    """Hand this process's buffered heartbeats to Redis in one round trip; the oldest pending age.
    Without Redis they are written to the database at once."""
    with _buffer_lock:
        buffered = dict(_buffer)
        oldest = _buffer_since[0]
        _buffer.clear()
        _buffer_since[0] = float("inf")
    if not buffered:
        return 0
    args = [x for agent_id, at in buffered.items() for x in (agent_id, repr(at))]
    args += [repr(oldest), repr(time.time())]
    age = _PUSH(keys=[HEARTBEATS_PENDING, HEARTBEATS_SINCE], args=args, default=None)
    if age is None:
        from agents.services.heartbeats import heartbeats_write

        heartbeats_write(buffered)
        return 0
    return int(age)


def heartbeat_signature_seen(*, agent_pk) -> str | None:
    """What the signature key holds now (the `seen` of a later fill)."""
    return hot_get(_signature_key(agent_pk))


def heartbeat_signature_fill(*, agent_pk, seen: str | None, signature: str) -> None:
    if hot_fill(_signature_key(agent_pk), seen=seen, value=signature, ttl=settings.AGENT_CONFIG_CACHE_TTL):
        _signatures.put(agent_pk, signature)


_TAKE = HotScript("""
local all = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
return all
""")


def heartbeats_take() -> dict[str, float]:
    """Take every pending heartbeat out of Redis atomically (a concurrent flusher gets none of them),
    this process's buffered ones included."""
    heartbeats_push()
    flat = _TAKE(keys=[HEARTBEATS_PENDING, HEARTBEATS_SINCE], args=[], default=[]) or []
    return {flat[i]: float(flat[i + 1]) for i in range(0, len(flat), 2)}


def heartbeats_put_back(pending: dict[str, float]) -> None:
    """A flush failed: return its heartbeats without overwriting newer ones."""
    def build(pipe):
        for agent_id, at in pending.items():
            pipe.hsetnx(HEARTBEATS_PENDING, agent_id, repr(at))
        pipe.set(HEARTBEATS_SINCE, repr(min(pending.values())), nx=True)

    if pending:
        hot_pipeline(build)


# --- warming -------------------------------------------------------------------------------------

def agent_cache_warm(*, agent_pk) -> None:
    """Fill the agent's shared entries (config, "no pending command", heartbeat signature) from the
    database, each with the usual compare-and-set, so its first calls after a (re-)registration find
    them instead of each reading the database. Three queries; run after the registration commits."""
    from agents.models import Agent, Command, CommandStatus

    keys = [_config_key(agent_pk), _command_key(agent_pk), _signature_key(agent_pk)]
    seen = hot_pipeline(lambda pipe: [pipe.get(k) for k in keys])
    if seen is None:
        return  # Redis unavailable: nothing to warm
    row = Agent.objects.filter(pk=agent_pk).values(
        *CONFIG_FIELDS, "instance_id", "status", "instance_type", "az", "current_mode").first()
    if row is None:
        return
    agent_config_fill(agent_pk=agent_pk, seen=seen[0], values={name: row[name] for name in CONFIG_FIELDS})
    if not Command.objects.filter(agent_id=agent_pk, is_open=True, status=CommandStatus.PENDING).exists():
        agent_no_command_fill(agent_pk=agent_pk, seen=seen[1])
    if row["instance_id"] and row["instance_type"] and row["az"] and row["current_mode"] in ("spot", "ondemand"):
        heartbeat_signature_fill(agent_pk=agent_pk, seen=seen[2], signature=heartbeat_signature(
            instance_id=row["instance_id"], status=row["status"], instance_type=row["instance_type"],
            az=row["az"], mode=row["current_mode"]))


# --- invalidation -------------------------------------------------------------------------------

def agent_row_changed(*, agent_pk, fields=None) -> None:
    """The agent row was saved (settings, status, instance...): its config and heartbeat signature
    are read again. `fields`: the saved fields when known (None: any)."""
    forget = {_signatures: [agent_pk]}
    if fields is None or set(fields) & set(CONFIG_FIELDS):
        forget[_configs] = [agent_pk]
    hot_changed_on_commit(keys=[_config_key(agent_pk), _signature_key(agent_pk)], forget=forget)


def agents_state_changed(*, agent_pks) -> None:
    """Bulk status/instance changes that bypass save() (the sweep, the heartbeat's full path)."""
    keys = [_signature_key(pk) for pk in agent_pks]
    if keys:
        hot_changed_on_commit(keys=keys, forget={_signatures: agent_pks})


def agent_deleted(*, agent_pk) -> None:
    agent_owner_forget(agent_pk=agent_pk)
    hot_changed_on_commit(keys=[_config_key(agent_pk), _command_key(agent_pk), _signature_key(agent_pk),
                                _owner_key(agent_pk)],
                          forget={local: [agent_pk] for local in (_configs, _no_commands, _signatures)})


def agent_cache_clear_local() -> None:
    """Forget this process's owner map and buffered heartbeats (tests)."""
    _owners.clear()
    _owners_preloaded.clear()
    with _buffer_lock:
        _buffer.clear()
        _buffer_since[0] = float("inf")
