import hashlib
import uuid

from django.db import models


def token_hash(token: str) -> str:
    """The only form in which a client token is stored: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Client(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    email = models.EmailField(max_length=254)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    # First characters of the token, so staff can tell tokens apart without being able to use one.
    token_prefix = models.CharField(max_length=12, editable=False, blank=True)
    is_active = models.BooleanField(default=True)
    # Issue 9: the server decides and records everything but tells the agents nothing (no emergency
    # replica, no automatic command): operators try the automation before trusting it.
    dry_run = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "clients"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    # DRF's permission checks read request.user.is_authenticated: the client is the caller.
    @property
    def is_authenticated(self) -> bool:
        return True
