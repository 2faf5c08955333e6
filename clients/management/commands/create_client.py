from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from clients.services import client_create


class Command(BaseCommand):
    help = "Create a client and print its new token, alone, on the last line of stdout (shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--email", required=True)
        parser.add_argument("--inactive", action="store_true", help="create the client disabled")

    def handle(self, *args, name, email, inactive, **options):
        if not name.strip():
            raise CommandError("--name must not be empty")
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"--email {email!r} is not a valid e-mail address")
        client, token = client_create(name=name.strip(), email=email, is_active=not inactive)
        self.stderr.write(f"Created client {client.name} ({client.pk}). Keep the token below: it is not stored.")
        self.stdout.write(token)
