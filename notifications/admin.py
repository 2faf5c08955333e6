from django.contrib import admin, messages

from notifications.models import Notification, NotificationAttempt
from notifications.services import notifications_retry_now
from backoffice.admin_views import HistoryAdmin, HistoryInline


class NotificationAttemptInline(HistoryInline):
    model = NotificationAttempt
    fields = ("attempted_at", "success", "status_code", "duration_ms", "error")
    readonly_fields = fields
    show_change_link = False


@admin.register(Notification)
class NotificationAdmin(HistoryAdmin):
    list_display = ("id", "kind", "status", "attempts", "client", "created_at", "next_attempt_at", "published_at",
                    "sent_at", "failed_at")
    list_filter = ("status", "kind")
    search_fields = ("text", "last_error")
    list_select_related = ("client",)
    readonly_fields = [f.name for f in Notification._meta.fields]
    inlines = [NotificationAttemptInline]
    actions = ["retry_now"]

    @admin.action(description="Retry now (one more delivery attempt)", permissions=["change"])
    def retry_now(self, request, queryset):
        n = notifications_retry_now(notification_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"{n} failed notification(s) queued for one more attempt.", messages.SUCCESS)
