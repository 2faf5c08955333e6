import dataclasses
import secrets
import threading
import time
from datetime import datetime, timedelta

from cachetools import TTLCache
from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils import timezone

from clients.models import AuditEntry, Client, ClientToken, TokenScope, token_hash

# Token -> grant, trusted in each process for this many seconds (docs/ARCHITECTURE.md §8, "Caching"): a
# rotated or revoked token or a deactivated client is refused on every host within it; an expiry is
# checked on every call. Unknown tokens are not kept.
AUTH_CACHE_SECONDS = 2
clock = time.monotonic  # the cache's clock; tests move it
_tokens = TTLCache(maxsize=10_000, ttl=AUTH_CACHE_SECONDS, timer=lambda: clock())
_tokens_lock = threading.Lock()  # cachetools caches are not thread-safe


def _new_token() -> str:
    return "sb_" + secrets.token_urlsafe(32)


@transaction.atomic
def client_create(*, name: str, email: str, is_active: bool = True) -> tuple[Client, str]:
    """Create a client; return it with its token, which is never readable again."""
    token = _new_token()
    client = Client.objects.create(
        name=name, email=email, is_active=is_active, token_hash=token_hash(token), token_prefix=token[:8]
    )
    return client, token


@transaction.atomic
def client_token_rotate(*, client: Client) -> str:
    """Replace the client's token; the old one stops working at once."""
    token = _new_token()
    client.token_hash = token_hash(token)
    client.token_prefix = token[:8]
    client.save(update_fields=["token_hash", "token_prefix", "updated_at"])
    return token


# The name under which changes made with the client's original token (Client.token_hash) are audited.
PRIMARY_TOKEN_NAME = "primary"


@dataclasses.dataclass(frozen=True)
class TokenGrant:
    """What a token gives its bearer: the client, the scope, and which token it is (None: the client's
    original token). Cached with the client for AUTH_CACHE_SECONDS, so that scope, expiry and
    revocation are known without a query."""

    client: Client
    scope: str
    token_id: object = None
    name: str = PRIMARY_TOKEN_NAME
    expires_at: datetime | None = None

    @property
    def is_dashboard(self) -> bool:
        return self.scope == TokenScope.DASHBOARD

    def expired(self, *, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def _grant_load(digest: str) -> TokenGrant | None:
    client = Client.objects.filter(token_hash=digest).first()
    if client is not None:
        return TokenGrant(client=client, scope=TokenScope.DASHBOARD)
    row = (ClientToken.objects.select_related("client")
           .filter(token_hash=digest, revoked_at__isnull=True).first())
    if row is None:
        return None
    return TokenGrant(client=row.client, scope=row.scope, token_id=row.pk, name=row.name, expires_at=row.expires_at)


# last_used_at is written at most once per TOKEN_LAST_USED_EVERY per token and process (and the UPDATE
# itself only moves a value older than that): never a database write per request.
TOKEN_LAST_USED_EVERY = timedelta(seconds=60)
_last_used_written = TTLCache(maxsize=100_000, ttl=TOKEN_LAST_USED_EVERY.total_seconds(), timer=lambda: clock())


def _token_touch(*, token_id, now: datetime) -> None:
    with _tokens_lock:
        if token_id in _last_used_written:
            return
        _last_used_written[token_id] = True
    try:
        ClientToken.objects.filter(pk=token_id).exclude(last_used_at__gt=now - TOKEN_LAST_USED_EVERY).update(
            last_used_at=now)
    except Exception:  # bookkeeping only: never fail a call over it
        pass


def token_authenticate(*, token: str, now: datetime | None = None) -> TokenGrant | None:
    """The grant of this token: its client (inactive ones included: the caller answers 403), scope and
    record; None when the token is unknown, revoked or expired. Kept per process for AUTH_CACHE_SECONDS
    (no query on the agents' calls): a revocation is honoured everywhere within it, an expiry at once."""
    digest = token_hash(token)
    with _tokens_lock:
        grant = _tokens.get(digest)
    if grant is None:
        grant = _grant_load(digest)
        if grant is None:
            return None
        with _tokens_lock:
            _tokens[digest] = grant
    now = now or timezone.now()
    if grant.expired(now=now):
        return None
    if grant.token_id is not None:
        _token_touch(token_id=grant.token_id, now=now)
    return dataclasses.replace(grant, client=_client_copy(grant.client))


_CLIENT_FIELDS = [field.attname for field in Client._meta.concrete_fields]


def _client_copy(client: Client) -> Client:
    """A request may change its own client object, never the cached one: each call gets a copy, built
    with `Model.from_db` (half the cost of `copy.copy`, which goes through pickling's protocol)."""
    return Client.from_db(DEFAULT_DB_ALIAS, _CLIENT_FIELDS, [getattr(client, name) for name in _CLIENT_FIELDS])


def client_get_by_token(*, token: str) -> Client | None:
    """The client this token belongs to (see `token_authenticate`), or None."""
    grant = token_authenticate(token=token)
    return grant.client if grant is not None else None


def client_tokens_forget() -> None:
    """Forget this process's cached tokens: a change made here is seen here at once (other processes
    within AUTH_CACHE_SECONDS)."""
    with _tokens_lock:
        _tokens.clear()
        _last_used_written.clear()


@transaction.atomic
def client_dry_run_set(*, client: Client, dry_run: bool) -> Client:
    """Turn the client's dry-run on or off (issue 9, item 7). Turning it on also withdraws the automatic
    commands still pending, so that from now on no automatic decision reaches an agent."""
    from agents.models import MANUAL_PRIORITY, Command, CommandStatus
    from agents.services.events import system_event_log
    from agents.states import commands_move

    client = Client.objects.select_for_update().get(pk=client.pk)
    if client.dry_run == dry_run:
        return client
    client.dry_run = dry_run
    client.save(update_fields=["dry_run", "updated_at"])
    withdrawn = 0
    if dry_run:
        pending = Command.objects.filter(
            agent__client=client, status=CommandStatus.PENDING, priority__lt=MANUAL_PRIORITY
        )
        withdrawn = commands_move(queryset=pending, to=CommandStatus.SUPERSEDED,
                                  message="withdrawn: the client turned dry-run on")
    system_event_log(client=client, event_type="client_dry_run_changed",
                     message=f"Dry-run turned {'on' if dry_run else 'off'}"
                     + (f"; {withdrawn} pending automatic command(s) withdrawn" if withdrawn else ""),
                     metadata={"dry_run": dry_run, "withdrawn_commands": withdrawn})
    return client


def client_dry_run_get(*, client: Client) -> bool:
    """The stored flag (the request's client may come from the token cache)."""
    return bool(Client.objects.filter(pk=client.pk).values_list("dry_run", flat=True).first())


# --- Named tokens (issue 20, item 5) ------------------------------------------------------------------

# A rotated token keeps working this long unless the caller names another overlap (docs/SECURITY.md).
TOKEN_ROTATION_OVERLAP_DEFAULT = timedelta(hours=24)
TOKEN_ROTATION_OVERLAP_MAX = timedelta(days=30)
TOKENS_PER_CLIENT_MAX = 100


@transaction.atomic
def client_token_create(*, client: Client, name: str, scope: str, expires_at: datetime | None = None
                        ) -> tuple[ClientToken, str]:
    """A new named token; returns it with the plain token, which is never readable again."""
    from spotbackend.exceptions import InvalidInput  # here: that module imports DRF, whose settings import this one

    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput("expires_at must be in the future.", fields={"expires_at": "must be in the future"})
    live = ClientToken.objects.filter(client=client, revoked_at__isnull=True).count()
    if live >= TOKENS_PER_CLIENT_MAX:
        raise InvalidInput(f"A client holds at most {TOKENS_PER_CLIENT_MAX} tokens; revoke one first.")
    token = _new_token()
    row = ClientToken.objects.create(client=client, name=name, scope=scope, expires_at=expires_at,
                                     token_hash=token_hash(token), token_prefix=token[:8])
    return row, token


@transaction.atomic
def client_token_revoke(*, token: ClientToken, now: datetime | None = None) -> ClientToken:
    """Revoke a token: refused on every route within the token cache's bound (the epoch moves on commit)."""
    if token.revoked_at is None:
        token.revoked_at = now or timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


@transaction.atomic
def client_token_rotate_named(*, token: ClientToken, overlap: timedelta = TOKEN_ROTATION_OVERLAP_DEFAULT,
                              now: datetime | None = None) -> tuple[ClientToken, str]:
    """One call: a new token with the same name, scope and expiry; the old one keeps working for
    `overlap` (its expires_at becomes now + overlap, or stays when that is sooner)."""
    now = now or timezone.now()
    token = ClientToken.objects.select_for_update().get(pk=token.pk)
    new, plain = client_token_create(client=token.client, name=token.name, scope=token.scope,
                                     expires_at=token.expires_at)
    until = now + overlap
    if token.expires_at is None or token.expires_at > until:
        token.expires_at = until
        token.save(update_fields=["expires_at"])
    return new, plain


# --- Audit trail (issue 20, item 6) ---------------------------------------------------------------------


def audit_entry_record(*, grant: TokenGrant, action: str, target: str = "", details: dict | None = None,
                       source_ip: str = "", now: datetime | None = None) -> AuditEntry | None:
    """Record a change made with a dashboard token (agent tokens make no dashboard changes)."""
    if not grant.is_dashboard:
        return None
    return AuditEntry.objects.create(
        client_id=grant.client.pk, token_id=grant.token_id, token_name=grant.name[:100], action=action[:64],
        target=str(target)[:200], details=details or {}, source_ip=(source_ip or "")[:64],
        created_at=now or timezone.now(),
    )
