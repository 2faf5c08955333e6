from django.contrib import admin, messages

from clients.models import Client
from clients.services import client_token_rotate
from backoffice.admin_views import savings_chart_html


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
