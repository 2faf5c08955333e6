from django.db import models


class JobStat(models.Model):
    """One row per scheduled job (its Celery task name), written by the worker after every run."""

    task = models.CharField(max_length=200, primary_key=True)
    runs = models.PositiveBigIntegerField(default=0)
    failures = models.PositiveBigIntegerField(default=0)
    duration_seconds_total = models.FloatField(default=0)
    last_duration_seconds = models.FloatField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        db_table = "ops_job_stats"
        ordering = ["task"]

    def __str__(self) -> str:
        return self.task


class MetricSnapshot(models.Model):
    """Gauges a periodic task computed from the database (e.g. agents by status), served by every web
    host's /metrics until the next refresh. `samples`: [[metric name, {label: value}, value], ...]."""

    name = models.CharField(max_length=64, primary_key=True)
    samples = models.JSONField(default=list)
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "ops_metric_snapshots"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
