"""Django's Redis cache, fail-soft: with Redis down or hung a read is a miss and a write is dropped
(after at most one short socket timeout per process per `REDIS_RETRY_SECONDS`), so the throttles
and anything else on the cache keep answering. See docs/PERFORMANCE.md ("The hot path")."""
import logging
import time

from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)


class FailSoftRedisCache(RedisCache):
    _down_until = 0.0

    def _guard(self, name, default, *args, **kwargs):
        if time.monotonic() < self._down_until:
            return default
        try:
            return getattr(super(), name)(*args, **kwargs)
        except Exception as exc:  # every redis error: the cache is an accelerator only
            if time.monotonic() >= self._down_until:
                logger.warning("cache unavailable (%s); continuing without it", type(exc).__name__)
            # Shared by every thread's cache object in this process.
            type(self)._down_until = time.monotonic() + settings.REDIS_RETRY_SECONDS
            return default

    def get(self, key, default=None, version=None):
        return self._guard("get", default, key, default, version)

    def get_many(self, keys, version=None):
        return self._guard("get_many", {}, keys, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._guard("set", None, key, value, timeout, version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._guard("set_many", list(data), data, timeout, version)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._guard("add", False, key, value, timeout, version)

    def delete(self, key, version=None):
        return self._guard("delete", False, key, version)

    def delete_many(self, keys, version=None):
        return self._guard("delete_many", None, keys, version)

    def has_key(self, key, version=None):
        return self._guard("has_key", False, key, version)

    def incr(self, key, delta=1, version=None):
        return self._guard("incr", 0, key, delta, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._guard("touch", False, key, timeout, version)

    def clear(self):
        return self._guard("clear", False)
