"""Token -> client, cached in each process (every agent call authenticates; the answer rarely changes).

The same per-process layer as the agent caches (`LocalCache`, spotbackend/hotcache.py): an answer is
trusted while the shared auth epoch in Redis is unchanged; any change to any client (token rotation,
deactivation, deletion) bumps the epoch, now and after commit, and every process checks the epochs at
most every `HOT_LOCAL_CHECK_SECONDS`, so a rotated or deactivated token stops working everywhere
within that time. Without Redis nothing is cached. See docs/PERFORMANCE.md ("The hot path").
"""
import copy
import time

from django.conf import settings

from spotbackend.hotcache import LocalCache

EPOCH_KEY = "sb:auth:epoch"


class _TokenCache:
    def __init__(self):
        self.local = LocalCache(EPOCH_KEY, max_entries=50_000)

    def get(self, digest: str):
        hit = self.local.get(digest)
        if hit is None or time.monotonic() - hit[1] > settings.AUTH_CACHE_TTL:
            return None
        return copy.copy(hit[0])  # a request may change its own copy; never the shared one

    def put(self, digest: str, client) -> None:
        self.local.put(digest, (copy.copy(client), time.monotonic()))

    def clear(self) -> None:
        self.local.entries = {}


token_cache = _TokenCache()

