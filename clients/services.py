import secrets

from django.db import transaction

from clients.models import Client, token_hash
from clients.tokens import token_cache


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
    token_cache.local.bump_on_commit()


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
        from agents.cache import agent_commands_changed

        pending = Command.objects.filter(
            agent__client=client, status=CommandStatus.PENDING, priority__lt=MANUAL_PRIORITY
        )
        agent_pks = set(pending.values_list("agent_id", flat=True))
        withdrawn = commands_move(queryset=pending, to=CommandStatus.SUPERSEDED,
                                  message="withdrawn: the client turned dry-run on")
        for agent_pk in agent_pks:  # the hot path's "has an open command?" flag (agents/cache.py)
            agent_commands_changed(agent_pk=agent_pk)
    system_event_log(client=client, event_type="client_dry_run_changed",
                     message=f"Dry-run turned {'on' if dry_run else 'off'}"
                     + (f"; {withdrawn} pending automatic command(s) withdrawn" if withdrawn else ""),
                     metadata={"dry_run": dry_run, "withdrawn_commands": withdrawn})
    return client


def client_dry_run_get(*, client: Client) -> bool:
    """The stored flag (the request's client may come from the token cache)."""
    return bool(Client.objects.filter(pk=client.pk).values_list("dry_run", flat=True).first())
