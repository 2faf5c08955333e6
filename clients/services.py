import secrets

from django.db import transaction

from clients.models import Client, token_hash


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
    return Client.objects.filter(token_hash=token_hash(token)).first()


@transaction.atomic
def client_dry_run_set(*, client: Client, dry_run: bool) -> Client:
    """Turn the client's dry-run on or off (issue 9, item 7). Turning it on also withdraws the automatic
    commands still pending, so that from now on no automatic decision reaches an agent."""
    from agents.models import MANUAL_PRIORITY, Command, CommandStatus
    from agents.services.events import system_event_log

    client = Client.objects.select_for_update().get(pk=client.pk)
    if client.dry_run == dry_run:
        return client
    client.dry_run = dry_run
    client.save(update_fields=["dry_run", "updated_at"])
    withdrawn = 0
    if dry_run:
        withdrawn = Command.objects.filter(
            agent__client=client, status=CommandStatus.PENDING, priority__lt=MANUAL_PRIORITY
        ).update(status=CommandStatus.SUPERSEDED, is_open=None, message="withdrawn: the client turned dry-run on")
    system_event_log(client=client, event_type="client_dry_run_changed",
                     message=f"Dry-run turned {'on' if dry_run else 'off'}"
                     + (f"; {withdrawn} pending automatic command(s) withdrawn" if withdrawn else ""),
                     metadata={"dry_run": dry_run, "withdrawn_commands": withdrawn})
    return client


def client_dry_run_get(*, client: Client) -> bool:
    """The stored flag (the request's client may come from the token cache)."""
    return bool(Client.objects.filter(pk=client.pk).values_list("dry_run", flat=True).first())
