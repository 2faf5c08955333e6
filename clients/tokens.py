"""Token -> client, cached in each process (every agent call authenticates; the answer rarely changes).

A cached answer is trusted while the shared auth epoch in Redis is unchanged; any change to any
client (token rotation, deactivation, deletion) bumps the epoch after commit, and every process
checks it at most every `AUTH_EPOCH_CHECK_SECONDS`, so a rotated or deactivated token stops working
everywhere within that time. Without Redis the cache holds an answer for that long only.
See docs/PERFORMANCE.md ("The hot path").
"""
import copy
import threading
import time

from django.conf import settings

from spotbackend.hotcache import hot_invalidate, hot_token

EPOCH_KEY = "sb:auth:epoch"
MAX_ENTRIES = 50_000


class _TokenCache:
    def __init__(self):
        self.lock = threading.Lock()
        self.entries: dict[str, tuple[object, float]] = {}
        self.epoch: str | None = None
        self.checked_at = float("-inf")

    def _check_epoch(self, now: float) -> None:
        if now - self.checked_at < settings.AUTH_EPOCH_CHECK_SECONDS:
            return
        with self.lock:
            if now - self.checked_at < settings.AUTH_EPOCH_CHECK_SECONDS:
                return
            epoch = hot_token(EPOCH_KEY)
            if epoch is None or epoch != self.epoch:
                # Unknown (no Redis) or bumped: nothing cached before now can be trusted.
                self.entries = {}
            self.epoch, self.checked_at = epoch, now

    def get(self, digest: str):
        now = time.monotonic()
        self._check_epoch(now)
        hit = self.entries.get(digest)
        if hit is None or now - hit[1] > settings.AUTH_CACHE_TTL:
            return None
        return copy.copy(hit[0])  # a request may change its own copy; never the shared one

    def put(self, digest: str, client) -> None:
        if len(self.entries) >= MAX_ENTRIES:
            self.entries = {}
        self.entries[digest] = (copy.copy(client), time.monotonic())

    def clear(self) -> None:
        with self.lock:
            self.entries = {}
            self.checked_at = float("-inf")


token_cache = _TokenCache()


def token_cache_invalidate() -> None:
    """A client changed: forget every cached token here and, through the epoch, in every process."""
    token_cache.clear()
    hot_invalidate(EPOCH_KEY, ttl=30 * 86400)
