import os
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from clients.models import Client, token_hash
from clients.services import client_create, client_token_rotate

DEMO_EMAIL = "demo@example.com"
DEMO_NAME = "Demo"


def demo_token_path() -> Path:
    return Path(settings.VAR_DIR) / "demo_token"


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (the token is a credential)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class Command(BaseCommand):
    help = (
        "Make sure a demo client exists and print its token (used by `make run`). The token is kept in "
        "$SPOTBACKEND_VAR_DIR/demo_token (mode 0600), so it stays the same across restarts."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--prepare", action="store_true",
            help="migrate and collect static files first (one process instead of three: `make run` starts faster)",
        )

    def handle(self, *args, prepare=False, **options):
        if prepare:
            call_command("migrate", interactive=False, stdout=self.stdout, stderr=self.stderr)
            call_command("collectstatic", interactive=False, verbosity=0)
        path = demo_token_path()
        kept = path.read_text().strip() if path.is_file() else ""
        client = Client.objects.filter(email=DEMO_EMAIL, name=DEMO_NAME).first()
        if client is not None and kept and client.token_hash == token_hash(kept):
            token = kept
        else:
            # First start, a new database or a token rotated in the admin: issue one and keep it.
            if client is None:
                client, token = client_create(name=DEMO_NAME, email=DEMO_EMAIL)
            else:
                token = client_token_rotate(client=client)
            _write_private(path, token)
        os.chmod(path, 0o600)
        self.stdout.write(f"Demo client {client.pk}\nDemo client token: {token}")
