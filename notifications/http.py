"""Sending one webhook delivery without letting a customer's URL reach inside the network (issue 20, item 4;
docs/SECURITY.md "Webhooks"), signing it the Standard Webhooks way, and escaping agent text for Slack.

The URL must be https (http only with WEBHOOK_ALLOW_HTTP); its host is resolved here, every resolved
address is checked (public unicast only, unless WEBHOOK_ALLOW_PRIVATE_TARGETS), and the connection goes to
that checked address, with the host name kept for TLS (SNI and certificate check) and the Host header: a
DNS answer cannot change between the check and the connection. Redirects are not followed, time-outs are
short and at most RESPONSE_BODY_MAX bytes of the answer are read. Errors name only scheme and host."""
import base64
import dataclasses
import hashlib
import hmac
import ipaddress
import socket
import time
import urllib.parse
from email.utils import parsedate_to_datetime

import certifi
import urllib3
from django.conf import settings

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 5.0
RESPONSE_BODY_MAX = 64 * 1024
USER_AGENT = "spotbackend-webhooks/1"


class UnsafeTarget(ValueError):
    """A URL or address a webhook may not be sent to."""


# --- URLs ---------------------------------------------------------------------------------------------


def url_redacted(url: str) -> str:
    """Scheme and host only: a webhook URL's path and query often are its secret."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "<invalid url>"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" if parts.scheme else "<invalid url>"


def address_allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A public unicast address; loopback, private, link-local (169.254.169.254), multicast, reserved,
    unspecified, shared, documentation... are refused. WEBHOOK_ALLOW_PRIVATE_TARGETS (development)
    allows loopback and private ranges, never link-local (the cloud's metadata service), multicast,
    unspecified or reserved ones."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return False
    if ip.is_global:
        return True
    if ip.is_link_local:
        return False
    return bool(settings.WEBHOOK_ALLOW_PRIVATE_TARGETS) and (ip.is_private or ip.is_loopback)


def _literal_ip(host: str):
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def url_check(url: str) -> urllib.parse.SplitResult:
    """The URL's parts, or UnsafeTarget: scheme, credentials, host, and a literal address's class.
    A host name is checked after resolution, at send time (`resolve_checked`)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise UnsafeTarget("The URL is not valid.") from None
    allowed_schemes = ("https", "http") if settings.WEBHOOK_ALLOW_HTTP else ("https",)
    if parts.scheme not in allowed_schemes:
        raise UnsafeTarget("The URL must use https.")
    if not host:
        raise UnsafeTarget("The URL has no host.")
    if parts.username or parts.password:
        raise UnsafeTarget("The URL may not carry credentials.")
    ip = _literal_ip(host)
    if ip is not None and not address_allowed(ip):
        raise UnsafeTarget(f"The address {ip} is not a public address.")
    return parts


def resolve_checked(host: str, port: int) -> str:
    """The address to connect to: every address the name resolves to must be allowed (one bad answer
    refuses the lot, so a name cannot mix a public and an internal address)."""
    ip = _literal_ip(host)
    if ip is not None:
        if not address_allowed(ip):
            raise UnsafeTarget(f"The address {ip} is not a public address.")
        return str(ip)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise UnsafeTarget(f"The host name does not resolve ({type(exc).__name__}).") from None
    addresses = []
    for info in infos:
        candidate = _literal_ip(info[4][0].split("%")[0])
        if candidate is None or not address_allowed(candidate):
            raise UnsafeTarget(f"The host resolves to {info[4][0]}, which is not a public address.")
        addresses.append(str(candidate))
    if not addresses:
        raise UnsafeTarget("The host name does not resolve.")
    return addresses[0]


# --- Signing (Standard Webhooks) ----------------------------------------------------------------------


def secret_new() -> str:
    import secrets

    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def signature(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with the secret's decoded key."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(*, secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> dict:
    """The three headers; during a rotation's overlap one signature per secret, space-separated."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(secret=s, msg_id=msg_id, timestamp=timestamp, body=body)
                                      for s in secrets_),
    }


# --- Slack text ---------------------------------------------------------------------------------------


def slack_escape(text) -> str:
    """Agent-supplied text made inert in a Slack message: &, <, > escaped as Slack asks (so no
    `<!channel>`, `<https://...|label>` or user mention), and line breaks turned into spaces so that
    no forged line ("Decision: all clear") can start."""
    value = str(text if text is not None else "")
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(value.splitlines()) if ("\n" in value or "\r" in value or "\u2028" in value) else value


# --- Sending ------------------------------------------------------------------------------------------


@dataclasses.dataclass
class SendResult:
    ok: bool
    status_code: int | None = None
    error: str = ""
    retry_after: int | None = None  # seconds, from a Retry-After header
    duration_ms: int = 0


def _retry_after(value: str | None) -> int | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(int(when.timestamp() - time.time()), 0)


def webhook_send(*, url: str, body: bytes, headers: dict) -> SendResult:
    """POST `body` to `url`, safely (module docstring). Never raises; a refused target is an error."""
    started = time.monotonic()
    shown = url_redacted(url)

    def done(**kwargs) -> SendResult:
        return SendResult(duration_ms=int((time.monotonic() - started) * 1000), **kwargs)

    try:
        parts = url_check(url)
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
        ip = resolve_checked(host, port)
    except UnsafeTarget as exc:
        return done(ok=False, error=f"Refused {shown}: {exc}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    host_header = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    all_headers = {"Host": host_header, "Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT)
    if parts.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            ip, port, timeout=timeout, retries=False, maxsize=1, cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(), server_hostname=host, assert_hostname=host,
        )
    else:
        pool = urllib3.HTTPConnectionPool(ip, port, timeout=timeout, retries=False, maxsize=1)
    try:
        response = pool.urlopen("POST", path, body=body, headers=all_headers, redirect=False, retries=False,
                                preload_content=False, assert_same_host=False)
        try:
            response.read(RESPONSE_BODY_MAX)  # at most this much is read; the rest is dropped with the connection
        finally:
            response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        kind = type(getattr(exc, "reason", None) or exc).__name__
        return done(ok=False, error=f"{kind} sending to {shown}")
    except OSError as exc:
        return done(ok=False, error=f"{type(exc).__name__} sending to {shown}")
    finally:
        pool.close()
    code = response.status
    if 200 <= code < 300:
        return done(ok=True, status_code=code)
    return done(ok=False, status_code=code, error=f"HTTP {code} from {shown}",
                retry_after=_retry_after(response.headers.get("Retry-After")))
