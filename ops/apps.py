from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations: the scheduled jobs' bookkeeping (last success, failures, duration), the metric
    snapshots the periodic tasks store, and their health check and metrics collector."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "ops"

    def ready(self):
        from celery.signals import task_postrun, task_prerun

        from ops import services
        from spotbackend.health import register_check
        from spotbackend.metrics import register_collector

        register_check("jobs", services.jobs_check, critical=False)
        register_collector(services.jobs_families)
        register_collector(services.snapshot_families)
        task_prerun.connect(services.on_task_prerun, weak=False, dispatch_uid="ops_job_prerun")
        task_postrun.connect(services.on_task_postrun, weak=False, dispatch_uid="ops_job_postrun")
