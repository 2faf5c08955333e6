import copy
import secrets
import threading
import time

from cachetools import TTLCache
from django.db import transaction

from clients.models import Client, token_hash

# Token -> client, trusted in each process for this many seconds (docs/ARCHITECTURE.md §8, "Caching"):
# a rotated token or a deactivated client is refused on every host within it. Unknown tokens are not kept.
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


def client_get_by_token(*, token: str) -> Client | None:
    """The client this token belongs to (inactive ones included: the caller answers 403), or None.
    A found client is kept per process for AUTH_CACHE_SECONDS; each caller gets its own copy."""
    digest = token_hash(token)
    with _tokens_lock:
        client = _tokens.get(digest)
    if client is None:
        client = Client.objects.filter(token_hash=digest).first()
        if client is None:
            return None
        with _tokens_lock:
            _tokens[digest] = client
    return copy.copy(client)


def client_tokens_forget() -> None:
    """Forget this process's cached tokens: a change made here is seen here at once (other processes
    within AUTH_CACHE_SECONDS)."""
    with _tokens_lock:
        _tokens.clear()


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
