"""Throttles keyed by the client address, which is REMOTE_ADDR, or the address NUM_PROXIES trusted
proxies put into X-Forwarded-For (DRF's rule): a header a client makes up is never trusted.

* Failed token attempts, on every API route: after TOKEN_FAILURE_RATE failures from one address, its
  further failures answer 429 instead of 401. A good token is never counted nor refused, so the other
  callers behind the same address (a NAT, an office) keep working.
* Admin logins: after ADMIN_LOGIN_RATE failed logins from one address, login posts from it answer 429
  until the window passes (passwords can be guessed, tokens cannot: docs/SECURITY.md)."""
from django.contrib import admin
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver
from django.http import JsonResponse
from rest_framework.throttling import SimpleRateThrottle



class FailureThrottle(SimpleRateThrottle):
    """Counts failures only; `wait_if_blocked` is asked before or after an attempt."""

    def get_cache_key(self, request, view=None):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def _load(self, request) -> None:
        self.key = self.get_cache_key(request)
        try:
            self.history = self.cache.get(self.key, [])
        except Exception:  # the cache is down: no throttle rather than no service
            self.history = []
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()

    def wait_if_blocked(self, request) -> float | None:
        self._load(request)
        return self.wait() if len(self.history) >= self.num_requests else None

    def record_failure(self, request) -> float | None:
        """Count one failure; the seconds to wait if this address is now over the limit, else None."""
        self._load(request)
        if len(self.history) >= self.num_requests:
            return self.wait()
        self.history.insert(0, self.now)
        try:
            self.cache.set(self.key, self.history, self.duration)
        except Exception:
            pass
        return None


class TokenFailureThrottle(FailureThrottle):
    scope = "token_failure"


class AdminLoginThrottle(FailureThrottle):
    scope = "admin_login"


def admin_login(request, extra_context=None):
    """The admin's login view, refusing posts from an address over its failed-login limit."""
    if request.method == "POST":
        wait = AdminLoginThrottle().wait_if_blocked(request)
        if wait is not None:
            response = JsonResponse(
                {"success": False, "error": "Too many failed logins from this address; try again later."}, status=429
            )
            response["Retry-After"] = str(int(wait) + 1)
            return response
    return admin.site.login(request, extra_context)


@receiver(user_login_failed)
def _count_failed_login(sender, credentials, request=None, **kwargs):
    if request is not None:
        AdminLoginThrottle().record_failure(request)
