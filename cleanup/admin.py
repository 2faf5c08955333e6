from django.contrib import admin

from cleanup.models import CleanupLog
from backoffice.admin_views import HistoryAdmin


@admin.register(CleanupLog)
class CleanupLogAdmin(HistoryAdmin):
    list_display = ("executed_at", "cleanup_type", "agent", "client", "deleted_count", "failed_count", "cutoff_date")
    list_filter = ("cleanup_type", "client", "executed_at")
    search_fields = ("agent__hostname", "agent__logical_agent_id", "error")
    list_select_related = ("agent", "client")
    raw_id_fields = ("agent", "client")
    date_hierarchy = "executed_at"
