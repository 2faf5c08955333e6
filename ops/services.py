"""Scheduled jobs' bookkeeping and metric snapshots (docs/OPERATIONS.md, "Health and metrics").

The worker records every run of a scheduled job (spotbackend/schedule.py) in `ops_job_stats`
(Celery's task_prerun/task_postrun signals): every web host then serves the same numbers, whichever
host ran the job. Periodic tasks of the apps store gauges they computed with `snapshot_store`."""
import logging
import threading
import time
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

from ops.models import JobStat, MetricSnapshot
from spotbackend.metrics import NAMESPACE
from spotbackend.schedule import scheduled_jobs

logger = logging.getLogger(__name__)

# A job is late when its last success is older than this many intervals plus the grace.
LATE_INTERVALS = 2
LATE_GRACE = timedelta(minutes=2)

_started: dict[str, float] = {}
_started_lock = threading.Lock()


def scheduled_tasks() -> dict[str, object]:
    return {job.task: job for job in scheduled_jobs()}


def on_task_prerun(sender=None, task_id=None, task=None, **kwargs):
    if task is not None and task.name in scheduled_tasks():
        with _started_lock:
            _started[task_id] = time.monotonic()


def on_task_postrun(sender=None, task_id=None, task=None, state=None, retval=None, **kwargs):
    if task is None or task.name not in scheduled_tasks():
        return
    with _started_lock:
        started = _started.pop(task_id, None)
    duration = time.monotonic() - started if started is not None else 0.0
    error = "" if state == "SUCCESS" else f"{state}: {retval!r}"[:500]
    try:
        job_run_record(task=task.name, success=state == "SUCCESS", duration=duration, error=error)
    except Exception:  # bookkeeping must never fail the job
        logger.warning("Run of %s not recorded", task.name, exc_info=True)


def job_run_record(*, task: str, success: bool, duration: float, error: str = "",
                   now: datetime | None = None) -> None:
    """Count one run of a scheduled job (atomic increments: several workers may run jobs at once)."""
    now = now or timezone.now()
    changes = {"runs": F("runs") + 1, "duration_seconds_total": F("duration_seconds_total") + duration,
               "last_duration_seconds": duration}
    if success:
        changes["last_success_at"] = now
    else:
        changes.update(failures=F("failures") + 1, last_failure_at=now, last_error=error)
    for _ in range(2):
        if JobStat.objects.filter(task=task).update(**changes):
            return
        try:
            with transaction.atomic():
                JobStat.objects.create(task=task)
        except IntegrityError:
            pass  # created by another worker meanwhile: the update applies now


def late_jobs(*, now: datetime | None = None) -> list[str]:
    """Enabled scheduled jobs whose last success is older than LATE_INTERVALS x their interval + LATE_GRACE.
    A job with no recorded run yet is not judged (a fresh deployment)."""
    from django_celery_beat.models import PeriodicTask

    now = now or timezone.now()
    jobs = scheduled_tasks()
    disabled = set(PeriodicTask.objects.filter(task__in=list(jobs), enabled=False).values_list("task", flat=True))
    late = []
    for stat in JobStat.objects.filter(task__in=list(jobs)):
        if stat.task in disabled:
            continue
        window = timedelta(seconds=LATE_INTERVALS * jobs[stat.task].interval_seconds) + LATE_GRACE
        if stat.last_success_at is None or now - stat.last_success_at > window:
            late.append(stat.task)
    return sorted(late)


def jobs_check() -> bool:
    late = late_jobs()
    if late:
        logger.warning("health: scheduled jobs late: %s", ", ".join(late))
    return not late


def jobs_families():
    from django_celery_beat.models import PeriodicTask

    jobs = scheduled_tasks()
    enabled = dict(PeriodicTask.objects.filter(task__in=list(jobs)).values_list("task", "enabled"))
    stats = {s.task: s for s in JobStat.objects.filter(task__in=list(jobs))}
    p = f"{NAMESPACE}_job"
    runs = CounterMetricFamily(f"{p}_runs", "Runs of a scheduled job (all workers).", labels=["task"])
    failures = CounterMetricFamily(f"{p}_failures", "Failed runs of a scheduled job.", labels=["task"])
    duration = SummaryMetricFamily(f"{p}_duration_seconds", "Time a scheduled job's runs took.", labels=["task"])
    last_duration = GaugeMetricFamily(f"{p}_last_duration_seconds", "Duration of the job's last run.", labels=["task"])
    last_success = GaugeMetricFamily(f"{p}_last_success_timestamp_seconds",
                                     "Unix time of the job's last successful run.", labels=["task"])
    interval = GaugeMetricFamily(f"{p}_interval_seconds", "How often the job is scheduled (its longest gap).",
                                 labels=["task"])
    is_enabled = GaugeMetricFamily(f"{p}_enabled", "1 when the job is enabled in beat's schedule (staff may "
                                   "pause one in the admin).", labels=["task"])
    for task, job in jobs.items():
        interval.add_metric([task], job.interval_seconds)
        is_enabled.add_metric([task], 1 if enabled.get(task, True) else 0)
        stat = stats.get(task)
        if stat is None:
            continue
        runs.add_metric([task], stat.runs)
        failures.add_metric([task], stat.failures)
        duration.add_metric([task], count_value=stat.runs, sum_value=stat.duration_seconds_total)
        if stat.last_duration_seconds is not None:
            last_duration.add_metric([task], stat.last_duration_seconds)
        if stat.last_success_at is not None:
            last_success.add_metric([task], stat.last_success_at.timestamp())
    return [runs, failures, duration, last_duration, last_success, interval, is_enabled]


# --- snapshots --------------------------------------------------------------------------------------
# name -> metric -> help text: what each snapshot may contain (the metric names get the namespace).
SNAPSHOT_HELP = {
    "agents": "Agents by status",
    "agents_stale": "Agents silent beyond AGENT_HEARTBEAT_TIMEOUT not yet marked offline",
    "agents_newest_heartbeat_timestamp_seconds": "Unix time of the most recent heartbeat stored, any agent",
    "notification_outbox_pending": "Notifications waiting to be delivered",
    "notification_outbox_failed": "Notifications given up on (failed for good)",
    "notification_outbox_oldest_pending_age_seconds": "Age of the oldest pending notification (0: none)",
}


def snapshot_store(name: str, samples: list[tuple[str, dict, float]], *, now: datetime | None = None) -> None:
    """Store the gauges a periodic task computed: [(metric, {label: value}, value), ...]. Each metric
    must be one of SNAPSHOT_HELP."""
    unknown = {metric for metric, _, _ in samples} - set(SNAPSHOT_HELP)
    if unknown:
        raise ValueError(f"Undeclared snapshot metrics: {sorted(unknown)}")
    MetricSnapshot.objects.update_or_create(
        name=name, defaults={"samples": [[m, labels, float(v)] for m, labels, v in samples],
                             "updated_at": now or timezone.now()},
    )


def snapshot_families():
    families: dict[str, GaugeMetricFamily] = {}
    updated = GaugeMetricFamily(f"{NAMESPACE}_metrics_snapshot_timestamp_seconds",
                                "Unix time a periodic task last refreshed these gauges.", labels=["snapshot"])
    for snapshot in MetricSnapshot.objects.all():
        updated.add_metric([snapshot.name], snapshot.updated_at.timestamp())
        for metric, labels, value in snapshot.samples:
            if metric not in SNAPSHOT_HELP:
                continue  # written by another version
            key = metric
            if key not in families:
                families[key] = GaugeMetricFamily(f"{NAMESPACE}_{metric}", SNAPSHOT_HELP[metric],
                                                  labels=sorted(labels))
            families[key].add_metric([str(labels[k]) for k in sorted(labels)], value)
    return [*families.values(), updated]
