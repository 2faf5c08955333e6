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


class TokenScope(models.TextChoices):
    # The agents' routes only (register, heartbeat, config, commands, reports, replicas, validate).
    AGENT = "agent", "Agent"
    # The agents' routes and the dashboard's client API (/api/client/...).
    DASHBOARD = "dashboard", "Dashboard"


class ClientToken(models.Model):
    """One of a client's named tokens (issue 20): stored as its SHA-256 only, shown once at creation.
    The client's original token (`Client.token_hash`) stays valid with dashboard rights."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=16, choices=TokenScope.choices, default=TokenScope.AGENT)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(max_length=12, editable=False, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Written at most once a minute per token and process (clients/services.py `token_authenticate`).
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "client_tokens"
        ordering = ["-created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(scope__in=["agent", "dashboard"]), name="client_token_scope_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.scope}, {self.token_prefix}…)"


class AuditEntry(models.Model):
    """A change made with a dashboard token (issue 20, item 6): who (the token's name), when, from where."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="audit_entries")
    # The token may be deleted later; its name stays.
    token = models.ForeignKey(ClientToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    token_name = models.CharField(max_length=100)
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=200, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    source_ip = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        db_table = "client_audit_entries"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["client", "-created_at"], name="audit_client_time_idx")]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.action} by {self.token_name} at {self.created_at:%Y-%m-%d %H:%M:%S}"
