"""The scheduled jobs (docs/ARCHITECTURE.md §6), defined in code and synced into django-celery-beat's
tables after every `migrate`. A changed setting takes effect on the next deploy; a job a staff member
paused in the admin (enabled=False) stays paused."""
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class Job:
    name: str
    task: str
    description: str
    crontab: dict | None = None  # minute/hour fields, UTC
    every_hours: int | None = None
    every_seconds: int | None = None

    @property
    def interval_seconds(self) -> int:
        """The longest gap between two scheduled runs (the health check and the job alert allow twice it)."""
        if self.every_seconds is not None:
            return self.every_seconds
        if self.every_hours is not None:
            return self.every_hours * 3600
        minute, hour = self.crontab["minute"], self.crontab["hour"]
        if hour != "*":
            return 86400
        if minute == "*":
            return 60
        if minute.startswith("*/"):
            return int(minute[2:]) * 60
        return 3600


def scheduled_jobs() -> list[Job]:
    return [
        Job(
            name="Daily savings",
            task="savings.tasks.savings_calculate_daily",
            description="Savings snapshots of yesterday (final) and today so far, every client.",
            crontab={"minute": "0", "hour": str(settings.SAVINGS_CALCULATION_HOUR)},
        ),
        Job(
            name="Stale agents",
            task="agents.periodic.stale_agents_sweep",
            description="Agents without a heartbeat for AGENT_HEARTBEAT_TIMEOUT seconds become offline.",
            every_hours=settings.STALE_AGENTS_INTERVAL_HOURS,
        ),
        Job(
            name="Pool risk analysis",
            task="agents.periodic.pool_risk_analysis",
            description="Risk score of every spot pool; alert when a pool enters avoid.",
            crontab={"minute": "*/15", "hour": "*"},
        ),
        Job(
            name="Replica lifecycle",
            task="agents.periodic.replica_lifecycle_sweep",
            description="Replicas stuck for REPLICA_STUCK_MINUTES are ended; ready emergency replicas "
            "past their notice's deadline are promoted.",
            crontab={"minute": "*/5", "hour": "*"},
        ),
        Job(
            name="Notification outbox",
            task="notifications.publish_due",
            description="Re-send notifications never published (broker down at commit time) or whose retry was lost.",
            crontab={"minute": "*", "hour": "*"},
        ),
        Job(
            name="Fleet metrics",
            task="agents.tasks.agents_metrics_refresh",
            description="Agents by status, stale agents and the newest heartbeat, for /metrics.",
            every_seconds=60,
        ),
        Job(
            name="Outbox metrics",
            task="notifications.outbox_metrics_refresh",
            description="Pending and failed notifications and the oldest pending one's age, for /metrics.",
            every_seconds=60,
        ),
        Job(
            name="Price history retention",
            task="agents.periodic.price_history_retention",
            description="Delete spot/on-demand price samples older than their retention, keeping each "
            "pool's (and type's) last one before the cutoff.",
            crontab={"minute": "40", "hour": "3"},
        ),
    ]


# Jobs of earlier releases, removed from existing databases by the next sync.
RETIRED_JOBS = ("Heartbeat flush",)


def periodic_tasks_sync(*, using: str = "default") -> list[str]:
    """Create or update the PeriodicTask rows of `scheduled_jobs()`; return the names written."""
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    PeriodicTask.objects.using(using).filter(name__in=RETIRED_JOBS).delete()
    written = []
    for job in scheduled_jobs():
        crontab = interval = None
        if job.crontab is not None:
            crontab, _ = CrontabSchedule.objects.using(using).get_or_create(
                minute=job.crontab["minute"], hour=job.crontab["hour"], day_of_week="*", day_of_month="*",
                month_of_year="*", timezone="UTC",
            )
        elif job.every_seconds is not None:
            interval, _ = IntervalSchedule.objects.using(using).get_or_create(
                every=job.every_seconds, period=IntervalSchedule.SECONDS
            )
        else:
            interval, _ = IntervalSchedule.objects.using(using).get_or_create(
                every=job.every_hours, period=IntervalSchedule.HOURS
            )
        task = PeriodicTask.objects.using(using).filter(name=job.name).first()
        wanted = {"task": job.task, "crontab": crontab, "interval": interval, "description": job.description,
                  "solar": None, "clocked": None, "one_off": False}
        if task is None:
            task = PeriodicTask(name=job.name, enabled=True, **wanted)
        elif all(getattr(task, k) == v for k, v in wanted.items()):
            continue  # unchanged: do not make beat reload its schedule
        else:
            for k, v in wanted.items():
                setattr(task, k, v)  # `enabled` is left as staff set it
        task.save(using=using)
        written.append(job.name)
    return written


def sync_after_migrate(sender, using: str = "default", **kwargs) -> None:
    periodic_tasks_sync(using=using)
