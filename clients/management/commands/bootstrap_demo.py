from django.core.management.base import BaseCommand

from clients.models import Client
from clients.services import client_create, client_token_rotate

DEMO_EMAIL = "demo@example.com"


class Command(BaseCommand):
    help = "Make sure a demo client exists and print a fresh token for it (used by `make run`)."

    def handle(self, *args, **options):
        client = Client.objects.filter(email=DEMO_EMAIL, name="Demo").first()
        if client is None:
            client, token = client_create(name="Demo", email=DEMO_EMAIL)
        else:
            token = client_token_rotate(client=client)
        self.stdout.write(f"Demo client {client.pk}\nDemo client token: {token}")
