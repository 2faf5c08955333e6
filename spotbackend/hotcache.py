"""Redis as an accelerator of the agent's hot path, never a single point of failure.

Every call here has short socket timeouts and a circuit breaker: when Redis is down or hung, the
call answers "miss" at once (after at most one timeout per process per `REDIS_RETRY_SECONDS`) and
the caller reads the database instead. See docs/PERFORMANCE.md ("The hot path").

Cached values are filled with a compare-and-set (`hot_fill`): a reader remembers what the key held
before it read the database, and its fill only lands if the key still holds that. Invalidation
(`hot_invalidate`) writes a fresh "dirty" token after the change commits, so a fill that raced with
a change can never put the old value back.
"""
import logging
import threading
import time
import uuid

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

DIRTY_PREFIX = "~"  # cached values are JSON or plain words and never start with it
# A local layer with a loader reloads everything at most this often: where the epoch moves faster
# (a busy fleet's agent rows), entries are read one by one in between.
PRELOAD_MIN_SECONDS = 30.0
# Changes of single entries (`LocalCache.forget`) stay in Redis this long: a process that has not
# checked for half of it drops its whole layer instead of reading them.
FORGET_LOG_SECONDS = 300.0
FORGET_READ_MAX = 5000  # more changes than this since a process's last check: it drops its layer
FORGET_MAX_NAMES = 1000  # more names in one change: the epoch moves instead

_CAS_FILL = """
local cur = redis.call('GET', KEYS[1])
if (cur == false and ARGV[1] == '') or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


class _Breaker:
    """One Redis client per URL and process, and when Redis last failed."""

    def __init__(self):
        self.lock = threading.Lock()
        self.url = None
        self.client = None
        self.script = None
        self.down_until = 0.0

    def get(self):
        url = settings.HOTCACHE_REDIS_URL
        if not url:
            return None
        if time.monotonic() < self.down_until:
            return None
        if self.client is None or self.url != url:
            with self.lock:
                if self.client is None or self.url != url:
                    import redis
                    from redis.backoff import NoBackoff
                    from redis.retry import Retry

                    client = redis.Redis.from_url(
                        url,
                        socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
                        socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT,
                        retry=Retry(NoBackoff(), 0),
                        health_check_interval=0,
                        decode_responses=True,
                    )
                    self.script = client.register_script(_CAS_FILL)
                    self.client, self.url = client, url
        return self.client

    def failed(self, exc: Exception) -> None:
        already_down = time.monotonic() < self.down_until
        self.down_until = time.monotonic() + settings.REDIS_RETRY_SECONDS
        if not already_down:
            logger.warning("Redis unavailable (%s); reading the database for %ss", type(exc).__name__,
                           settings.REDIS_RETRY_SECONDS)

    def reset(self) -> None:
        with self.lock:
            self.client, self.url, self.script, self.down_until = None, None, None, 0.0


_breaker = _Breaker()
_MISS = object()


def _call(fn, default=None):
    client = _breaker.get()
    if client is None:
        return default
    try:
        return fn(client)
    except Exception as exc:  # redis errors of every kind: Redis only ever speeds things up
        _breaker.failed(exc)
        return default


def hot_get(key: str) -> str | None:
    """The raw value (a dirty token included), or None when missing or Redis is unavailable."""
    return _call(lambda r: r.get(key))


def hot_value(raw: str | None) -> str | None:
    """A usable cached value, or None for a miss (missing or dirty)."""
    if raw is None or raw.startswith(DIRTY_PREFIX):
        return None
    return raw


def hot_fill(key: str, *, seen: str | None, value: str, ttl: int) -> bool:
    """Store `value` only if the key still holds `seen` (what it held before the database read)."""
    return bool(_call(lambda r: _breaker.script(keys=[key], args=[seen or "", value, int(ttl)], client=r), False))


def hot_invalidate(*keys: str, ttl: int = 86400) -> None:
    """Mark the keys dirty with a fresh token: no earlier reader's fill can land after this."""
    if not keys:
        return
    token = DIRTY_PREFIX + uuid.uuid4().hex

    def run(r):
        pipe = r.pipeline(transaction=False)
        for key in keys:
            pipe.set(key, token, ex=ttl)
        pipe.execute()

    _call(run)


class HotScript:
    """A Lua script run atomically in Redis; calling it answers `default` when Redis is unavailable."""

    def __init__(self, source: str):
        self.source = source
        self.scripts: dict[int, object] = {}

    def __call__(self, *, keys: list[str], args: list, default=None):
        def run(r):
            script = self.scripts.get(id(r))
            if script is None:
                script = self.scripts[id(r)] = r.register_script(self.source)
            return script(keys=keys, args=args, client=r)

        return _call(run, default)


# One change in one round trip: mark KEYS[1..ARGV[4]] dirty with ARGV[1] (ttl ARGV[2]); append the
# names in ARGV[5..] (newline-separated, one argument per log) to the LocalCache logs in the remaining
# KEYS, trimming each to the last ARGV[3] ms by Redis's own clock.
_CHANGE = HotScript("""
local n = tonumber(ARGV[4])
for i = 1, n do redis.call('SET', KEYS[i], ARGV[1], 'EX', ARGV[2]) end
for j = n + 1, #KEYS do
  local id
  for name in string.gmatch(ARGV[4 + j - n], '[^\\n]+') do id = redis.call('XADD', KEYS[j], '*', 'k', name) end
  if id then
    local ms = tonumber(string.match(id, '^(%d+)'))
    redis.call('XTRIM', KEYS[j], 'MINID', '~', tostring(ms - tonumber(ARGV[3])))
    redis.call('PEXPIRE', KEYS[j], tonumber(ARGV[3]) * 2)
  end
end
return 1
""")


def hot_changed(*, keys=(), forget: dict | None = None, ttl: int = 86400) -> None:
    """A change, told in one round trip: the shared `keys` are marked dirty (as `hot_invalidate`) and
    each LocalCache in `forget` drops the named entries here now and everywhere at the next check (as
    `LocalCache.forget`; a cache given more than FORGET_MAX_NAMES names moves its epoch instead)."""
    logs, names = [], []
    for cache, cache_names in (forget or {}).items():
        cache_names = [str(name) for name in cache_names]
        if not cache_names:
            continue
        if len(cache_names) > FORGET_MAX_NAMES:
            cache.bump()
            continue
        cache.drop_here(cache_names)
        logs.append(cache.log_key)
        names.append("\n".join(cache_names))
    if keys or logs:
        _CHANGE(keys=[*keys, *logs],
                args=[DIRTY_PREFIX + uuid.uuid4().hex, int(ttl), int(FORGET_LOG_SECONDS * 1000), len(keys), *names])


def hot_changed_on_commit(*, keys=(), forget: dict | None = None) -> None:
    """`hot_changed` now and again after the surrounding transaction commits: the second one defeats a
    reader that filled the old value between the two (at once, once, outside a transaction)."""
    hot_changed(keys=keys, forget=forget)
    if not transaction.get_autocommit():
        transaction.on_commit(lambda: hot_changed(keys=keys, forget=forget))


def hot_pipeline(build, default=None):
    """Run several commands in one round trip: `build(pipe)` queues them; the results, or `default`."""

    def run(r):
        pipe = r.pipeline(transaction=False)
        build(pipe)
        return pipe.execute()

    return _call(run, default)


class LocalCache:
    """A per-process layer in front of Redis, trusted while a shared epoch in Redis is unchanged.

    `bump()` (after a change) gives the epoch a fresh token; every process compares its epochs at
    most every `HOT_LOCAL_CHECK_SECONDS` (all of them in one round trip) and drops a cache whose epoch
    moved, so a change is seen everywhere within that time. Without Redis the epochs are unknown and
    the caches are dropped at every check: entries live that long at most.

    A cache made with `forget_key` also takes changes of single entries: `forget(name)` appends the
    name to a short log in Redis (a stream beside the epoch), and every process reads the log in the
    same round trip and drops only those entries. One agent's change then costs every other process
    one entry, not its whole layer (docs/PERFORMANCE.md, "Changes of one agent")."""

    _all: list["LocalCache"] = []
    _lock = threading.Lock()
    _checked_at = float("-inf")

    def __init__(self, epoch_key: str, max_entries: int = 200_000, loader=None, forget_key=None):
        """`loader`: () -> {key: value} of every entry, read from the database. When given, the first
        miss under an epoch loads them all in one query (at most every PRELOAD_MIN_SECONDS), so a
        process that starts, or whose epoch moved, does not ask Redis once per key.
        `forget_key`: name -> the local keys it stands for; enables `forget` (names are strings)."""
        self.epoch_key = epoch_key
        self.forget_key = forget_key
        self.log_key = epoch_key + ":log" if forget_key is not None else None
        self.log_id: str | None = None  # the last log entry applied here (None: start from the log's end)
        self.generation = 0  # moves whenever entries are dropped by name (a fill read before must not land)
        self.max_entries = max_entries
        self.entries: dict = {}
        self.epoch: str | None = None
        self.loader = loader
        self.loaded_epoch: str | None = None
        self.loaded_at = float("-inf")
        self.load_lock = threading.Lock()
        self.read_under = threading.local()  # the epoch at this thread's last get
        LocalCache._all.append(self)

    @classmethod
    def check_epochs(cls) -> None:
        now = time.monotonic()
        if now - cls._checked_at < settings.HOT_LOCAL_CHECK_SECONDS:
            return
        with cls._lock:
            if now - cls._checked_at < settings.HOT_LOCAL_CHECK_SECONDS:
                return

            # A process that has not looked for a while may have missed trimmed log entries: it
            # starts again from the log's end and drops everything instead.
            lagging = now - cls._checked_at > FORGET_LOG_SECONDS / 2

            def build(pipe):
                for cache in cls._all:
                    pipe.set(cache.epoch_key, DIRTY_PREFIX + uuid.uuid4().hex, nx=True, ex=30 * 86400)
                    pipe.get(cache.epoch_key)
                    if cache.log_key is None:
                        continue
                    if cache.log_id is None or lagging:
                        pipe.xrevrange(cache.log_key, count=1)
                    else:
                        pipe.xrange(cache.log_key, min="(" + cache.log_id, count=FORGET_READ_MAX)

            results = hot_pipeline(build)
            at = 0
            for cache in cls._all:
                epoch = results[at + 1] if results else None
                log = results[at + 2] if results and cache.log_key is not None else None
                at += 2 + (cache.log_key is not None)
                if epoch is None or epoch != cache.epoch:
                    cache.entries = {}
                if cache.log_key is not None:
                    cache._apply_log(log, from_end=cache.log_id is None or lagging, known=epoch is not None)
                cache.epoch = epoch
            cls._checked_at = now

    def _apply_log(self, log, *, from_end: bool, known: bool) -> None:
        """Drop the entries the log names since the last check (under LocalCache._lock)."""
        if not known:
            self.log_id = None  # Redis unavailable: everything was dropped, start again from the end
            return
        if from_end:
            if self.log_id is not None:  # lagging: what was missed is unknown
                self.entries = {}
                self.generation += 1
            self.log_id = log[0][0] if log else "0-0"
            return
        if not log:
            return
        self.generation += 1
        if len(log) >= FORGET_READ_MAX:
            self.entries = {}  # more changes than worth reading one by one
        else:
            for _, fields in log:
                for key in self.forget_key(fields.get("k", "")):
                    self.entries.pop(key, None)
        self.log_id = log[-1][0]

    def get(self, key):
        LocalCache.check_epochs()
        value = self.entries.get(key)
        if value is None and self.loader is not None and self.epoch is not None and self.loaded_epoch != self.epoch:
            self._preload()
            value = self.entries.get(key)
        self.read_under.epoch = (self.epoch, self.generation)  # what a fill after this read may be kept under
        return value

    def _preload(self) -> None:
        """Load every entry under the epoch known now (read before the database, like every fill: a
        change that commits meanwhile moves the epoch and the next check drops what was loaded)."""
        if not self.load_lock.acquire(blocking=False):
            return  # another thread is loading: this one asks Redis meanwhile
        try:
            epoch, generation, now = self.epoch, self.generation, time.monotonic()
            if self.loaded_epoch == epoch or now - self.loaded_at < PRELOAD_MIN_SECONDS:
                return
            self.loaded_epoch, self.loaded_at = epoch, now
            try:
                loaded = self.loader()
            except Exception:  # the database is unavailable: entries are read one by one
                logger.exception("preloading %s failed", self.epoch_key)
                return
            with LocalCache._lock:  # check_epochs swaps entries and epoch under it
                if (self.epoch, self.generation) == (epoch, generation) and \
                        len(loaded) + len(self.entries) < self.max_entries:
                    self.entries.update(loaded)
        finally:
            self.load_lock.release()

    def put(self, key, value) -> None:
        """Keep a value this thread read after its last `get` here; dropped if the epoch moved since
        that get (the value may predate the change that moved it)."""
        with LocalCache._lock:
            if self.epoch is None:
                return  # epoch unknown (no Redis): nothing local can be trusted beyond this check
            if getattr(self.read_under, "epoch", (self.epoch, self.generation)) != (self.epoch, self.generation):
                return
            if len(self.entries) >= self.max_entries:
                self.entries = {}
            self.entries[key] = value

    def discard(self, key) -> None:
        self.entries.pop(key, None)

    def bump(self) -> None:
        """A change: drop this process's entries now and every other process's at its next check."""
        self.entries = {}
        hot_invalidate(self.epoch_key, ttl=30 * 86400)

    def bump_on_commit(self) -> None:
        self.bump()
        if not transaction.get_autocommit():
            transaction.on_commit(self.bump)

    def forget(self, *names: str) -> None:
        """A change of these entries only: drop them here now and in every other process at its next
        check. Many names at once move the epoch instead (one key for all of them)."""
        hot_changed(forget={self: names})

    def drop_here(self, names) -> None:
        """Drop the named entries in this process (a fill read before must not land)."""
        with LocalCache._lock:
            self.generation += 1
            for name in names:
                for key in self.forget_key(name):
                    self.entries.pop(key, None)

    @classmethod
    def clear_all(cls) -> None:
        for cache in cls._all:
            cache.entries, cache.epoch, cache.log_id = {}, None, None
            cache.loaded_epoch, cache.loaded_at = None, float("-inf")
        cls._checked_at = float("-inf")


def hot_reset() -> None:
    """Forget the client, the breaker state and every local layer (tests, settings changes)."""
    _breaker.reset()
    LocalCache.clear_all()


def hot_client():
    """The raw client, for tests and maintenance; None when unavailable."""
    return _breaker.get()
