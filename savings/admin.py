from django.contrib import admin

from savings.models import SavingsSnapshot
from backoffice.admin_views import HistoryAdmin


@admin.register(SavingsSnapshot)
class SavingsSnapshotAdmin(HistoryAdmin):
    """Computed by the savings job from switches and prices; recomputed there, never typed in."""

    list_display = ("snapshot_date", "client", "total_savings", "spot_hours", "ondemand_hours", "actual_cost",
                    "ondemand_cost", "switch_count", "average_savings_percent")
    list_filter = ("client", "snapshot_date")
    search_fields = ("client__name", "client__email")
    list_select_related = ("client",)
    date_hierarchy = "snapshot_date"
