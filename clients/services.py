import secrets

from django.db import transaction

from clients.models import Client, token_hash
from clients.tokens import token_cache, token_cache_invalidate


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
    Cached per process (clients/tokens.py): no query on the agent's hot path."""
    digest = token_hash(token)
    client = token_cache.get(digest)
    if client is None:
        client = Client.objects.filter(token_hash=digest).first()
        if client is not None:
            token_cache.put(digest, client)
    return client


def client_changed(*, client: Client) -> None:
    """Any change to a client (token, active flag, deletion) reaches every process's token cache
    (now, and again once it commits)."""
    token_cache_invalidate()
    if not transaction.get_autocommit():
        transaction.on_commit(token_cache_invalidate)
