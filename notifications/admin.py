from django import forms
from django.contrib import admin, messages

from notifications.http import url_redacted
from notifications.models import Notification, NotificationAttempt, WebhookEndpoint
from notifications.services import (
    endpoint_url_validate,
    notifications_retry_now,
    webhook_endpoint_secret_rotate,
    webhook_endpoint_test,
)
from notifications.http import secret_new
from spotbackend.exceptions import ApplicationError
from backoffice.admin_views import HistoryAdmin, HistoryInline


class NotificationAttemptInline(HistoryInline):
    model = NotificationAttempt
    fields = ("attempted_at", "success", "status_code", "duration_ms", "error")
    readonly_fields = fields
    show_change_link = False


@admin.register(Notification)
class NotificationAdmin(HistoryAdmin):
    list_display = ("id", "kind", "status", "attempts", "client", "endpoint", "last_status_code", "created_at", "next_attempt_at", "published_at",
                    "sent_at", "failed_at")
    list_filter = ("status", "kind")
    search_fields = ("text", "last_error")
    list_select_related = ("client", "endpoint")
    readonly_fields = [f.name for f in Notification._meta.fields]
    inlines = [NotificationAttemptInline]
    actions = ["retry_now"]

    @admin.action(description="Retry now (one more delivery attempt)", permissions=["change"])
    def retry_now(self, request, queryset):
        n = notifications_retry_now(notification_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"{n} failed notification(s) queued for one more attempt.", messages.SUCCESS)


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https")

    class Meta:
        model = WebhookEndpoint
        fields = ("client", "url", "description", "events", "format", "enabled")

    def clean_url(self):
        try:
            return endpoint_url_validate(url=self.cleaned_data["url"])
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from None


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Clients' own webhook endpoints. The secret is never shown here (only at creation and rotation);
    the URL appears in the list as scheme and host only (its path may be a secret)."""

    form = WebhookEndpointForm
    list_display = ("id", "client", "target", "format", "enabled", "failing_since", "disabled_reason", "created_at")
    list_filter = ("enabled", "format")
    search_fields = ("client__name", "description")
    list_select_related = ("client",)
    readonly_fields = ("secret_prefix", "previous_secret_expires_at", "failing_since", "disabled_reason",
                       "disabled_at", "created_at", "updated_at")
    actions = ["rotate_secret", "send_test"]

    @admin.display(description="Target")
    def target(self, obj):
        return url_redacted(obj.url)

    @admin.display(description="Secret")
    def secret_prefix(self, obj):
        return f"{obj.secret[:10]}…" if obj and obj.secret else "-"

    def save_model(self, request, obj, form, change):
        if not change and not obj.secret:
            obj.secret = secret_new()
            super().save_model(request, obj, form, change)
            self.message_user(request, f"Signing secret of the new endpoint (shown once): {obj.secret}", messages.WARNING)
            return
        super().save_model(request, obj, form, change)

    @admin.action(description="Rotate the signing secret (new one shown once; the old one signs 24 h more)",
                  permissions=["change"])
    def rotate_secret(self, request, queryset):
        for endpoint in queryset:
            endpoint = webhook_endpoint_secret_rotate(endpoint=endpoint)
            self.message_user(request, f"New secret for {endpoint.pk} (shown once): {endpoint.secret}", messages.WARNING)

    @admin.action(description="Send a test event", permissions=["change"])
    def send_test(self, request, queryset):
        for endpoint in queryset:
            webhook_endpoint_test(endpoint=endpoint)
        self.message_user(request, f"{queryset.count()} test event(s) queued.", messages.SUCCESS)
