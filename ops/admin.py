from django.contrib import admin

from ops.models import JobStat, MetricSnapshot


@admin.register(JobStat)
class JobStatAdmin(admin.ModelAdmin):
    list_display = ["task", "runs", "failures", "last_success_at", "last_failure_at", "last_duration_seconds"]
    readonly_fields = [f.name for f in JobStat._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(MetricSnapshot)
class MetricSnapshotAdmin(admin.ModelAdmin):
    list_display = ["name", "updated_at"]
    readonly_fields = ["name", "samples", "updated_at"]

    def has_add_permission(self, request):
        return False
