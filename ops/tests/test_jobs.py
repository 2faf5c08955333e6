"""Scheduled jobs' bookkeeping (ops/services.py): every run counted whichever worker ran it, late jobs
found from their schedule, snapshots limited to declared gauges."""
from datetime import timedelta

import pytest
from django.utils import timezone

from ops import services
from ops.models import JobStat, MetricSnapshot
from spotbackend.schedule import scheduled_jobs

pytestmark = pytest.mark.django_db


def test_runs_failures_duration_and_last_success_are_counted():
    now = timezone.now()
    services.job_run_record(task="agents.periodic.pool_risk_analysis", success=True, duration=1.5, now=now)
    services.job_run_record(task="agents.periodic.pool_risk_analysis", success=False, duration=0.5,
                            error="FAILURE: OperationalError(2013)", now=now + timedelta(minutes=15))
    stat = JobStat.objects.get()
    assert (stat.runs, stat.failures) == (2, 1)
    assert stat.duration_seconds_total == 2.0 and stat.last_duration_seconds == 0.5
    assert stat.last_success_at == now and stat.last_failure_at == now + timedelta(minutes=15)
    assert "OperationalError" in stat.last_error


def test_every_job_has_an_interval_from_its_schedule():
    intervals = {job.task: job.interval_seconds for job in scheduled_jobs()}
    assert intervals["agents.periodic.pool_risk_analysis"] == 900
    assert intervals["savings.tasks.savings_calculate_daily"] == 86400
    assert intervals["notifications.publish_due"] == 60
    assert intervals["agents.periodic.replica_lifecycle_sweep"] == 300
    assert intervals["agents.periodic.price_history_retention"] == 86400
    assert all(seconds > 0 for seconds in intervals.values())


def test_late_jobs_are_those_past_twice_their_interval_plus_grace():
    now = timezone.now()
    JobStat.objects.create(task="agents.periodic.replica_lifecycle_sweep", runs=1,
                           last_success_at=now - timedelta(minutes=13))  # 2 x 5 min + 2 min = 12 min
    JobStat.objects.create(task="agents.periodic.pool_risk_analysis", runs=1,
                           last_success_at=now - timedelta(minutes=31))  # 2 x 15 + 2 = 32 min
    JobStat.objects.create(task="notifications.publish_due", runs=3, failures=3)  # never succeeded
    JobStat.objects.create(task="some.retired.task", runs=1, last_success_at=now - timedelta(days=9))
    assert services.late_jobs(now=now) == ["agents.periodic.replica_lifecycle_sweep", "notifications.publish_due"]


def test_snapshots_take_declared_gauges_only():
    services.snapshot_store("agents", [("agents", {"status": "online"}, 3)])
    services.snapshot_store("agents", [("agents", {"status": "online"}, 4)])  # replaced, not added
    assert MetricSnapshot.objects.get().samples == [["agents", {"status": "online"}, 4.0]]
    with pytest.raises(ValueError):
        services.snapshot_store("agents", [("agents_by_instance", {"agent": "a-1"}, 1)])
