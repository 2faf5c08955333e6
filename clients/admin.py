from django.contrib import admin, messages

from clients.models import AuditEntry, Client, ClientToken
from clients.models import token_hash as _token_hash
from clients.services import (
    _new_token,
    client_token_revoke,
    client_token_rotate,
    client_token_rotate_named,
)
from backoffice.admin_views import HistoryAdmin, savings_chart_html


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "is_active", "dry_run", "token_prefix", "created_at")
    list_filter = ("is_active", "dry_run", "created_at")
    search_fields = ("name", "email", "id")
    readonly_fields = ("id", "token_prefix", "created_at", "updated_at", "daily_savings")
    actions = ["rotate_token"]

    @admin.display(description="Daily savings, last 90 days")
    def daily_savings(self, obj):
        return savings_chart_html(client=obj) if obj and obj.pk else "-"

    def save_model(self, request, obj, form, change):
        if not change and not obj.token_hash:
            from clients.services import _new_token
            from clients.models import token_hash

            token = _new_token()
            obj.token_hash, obj.token_prefix = token_hash(token), token[:8]
            super().save_model(request, obj, form, change)
            self.message_user(request, f"Token for {obj.name} (shown once): {token}", messages.WARNING)
            return
        super().save_model(request, obj, form, change)

    @admin.action(description="Rotate token (the new token is shown once)")
    def rotate_token(self, request, queryset):
        for client in queryset:
            token = client_token_rotate(client=client)
            self.message_user(request, f"New token for {client.name} (shown once): {token}", messages.WARNING)


@admin.register(ClientToken)
class ClientTokenAdmin(admin.ModelAdmin):
    """Named tokens (issue 20): created here or through the client API, shown once, stored as a hash."""

    list_display = ("name", "client", "scope", "token_prefix", "created_at", "last_used_at", "expires_at", "revoked_at")
    list_filter = ("scope", "created_at")
    search_fields = ("name", "client__name", "token_prefix")
    list_select_related = ("client",)
    fields = ("client", "name", "scope", "expires_at", "token_prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("token_prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke", "rotate"]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (("client",) if obj is not None else ())

    def save_model(self, request, obj, form, change):
        if not change and not obj.token_hash:
            token = _new_token()
            obj.token_hash, obj.token_prefix = _token_hash(token), token[:8]
            super().save_model(request, obj, form, change)
            self.message_user(request, f"Token '{obj.name}' for {obj.client.name} (shown once): {token}",
                              messages.WARNING)
            return
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke (refused everywhere within seconds)", permissions=["change"])
    def revoke(self, request, queryset):
        for token in queryset:
            client_token_revoke(token=token)
        self.message_user(request, f"{queryset.count()} token(s) revoked.", messages.SUCCESS)

    @admin.action(description="Rotate (new token shown once; the old one works 24 h more)", permissions=["change"])
    def rotate(self, request, queryset):
        for token in queryset.filter(revoked_at__isnull=True):
            new, plain = client_token_rotate_named(token=token)
            self.message_user(request, f"New token '{new.name}' for {token.client.name} (shown once): {plain}",
                              messages.WARNING)


@admin.register(AuditEntry)
class AuditEntryAdmin(HistoryAdmin):
    """What dashboard tokens changed: read-only."""

    list_display = ("created_at", "client", "token_name", "action", "target", "source_ip")
    list_filter = ("action", "created_at")
    search_fields = ("client__name", "token_name", "action", "target", "source_ip")
    list_select_related = ("client",)
    readonly_fields = [f.name for f in AuditEntry._meta.fields]
