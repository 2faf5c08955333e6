"""Audit a change made through the API (issue 20, item 6): the view calls this after the service, with
the request's token grant and its source address (DRF's rule: REMOTE_ADDR, or the entry NUM_PROXIES
trusted proxies added to X-Forwarded-For, as the throttles use)."""
from rest_framework.throttling import BaseThrottle

from clients.services import audit_entry_record


def request_source_ip(request) -> str:
    return BaseThrottle().get_ident(request) or ""


def audit_request(request, *, action: str, target="", details: dict | None = None):
    grant = getattr(request, "auth", None)
    if grant is None or not hasattr(grant, "is_dashboard"):
        return None
    return audit_entry_record(grant=grant, action=action, target=str(target), details=details,
                              source_ip=request_source_ip(request))
