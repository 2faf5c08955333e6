import pytest
from django.core.management import call_command
from django.test import override_settings
from django_celery_beat.models import PeriodicTask

from spotbackend.celery import app
from spotbackend.schedule import periodic_tasks_sync

pytestmark = pytest.mark.django_db


def test_migrate_already_synced_the_three_jobs():
    """The test database was built by `migrate`, whose post_migrate handler wrote the schedule."""
    tasks = {t.name: t for t in PeriodicTask.objects.select_related("crontab", "interval")}
    assert set(tasks) >= {"Daily savings", "Stale agents", "Pool risk analysis"}
    savings = tasks["Daily savings"]
    assert savings.task == "savings.tasks.savings_calculate_daily" and savings.enabled
    assert (savings.crontab.minute, savings.crontab.hour) == ("0", "0") and savings.interval is None
    stale = tasks["Stale agents"]
    assert (stale.interval.every, stale.interval.period) == (6, "hours") and stale.crontab is None
    risk = tasks["Pool risk analysis"]
    assert (risk.crontab.minute, risk.crontab.hour) == ("*/15", "*")


def test_every_scheduled_task_is_registered_with_the_worker():
    app.loader.import_default_modules()
    for task in PeriodicTask.objects.exclude(task="celery.backend_cleanup"):
        assert task.task in app.tasks, task.task


def test_resync_follows_settings_but_keeps_a_pause():
    PeriodicTask.objects.filter(name="Stale agents").update(enabled=False)
    with override_settings(SAVINGS_CALCULATION_HOUR=3, STALE_AGENTS_INTERVAL_HOURS=2):
        assert set(periodic_tasks_sync()) == {"Daily savings", "Stale agents"}
    savings = PeriodicTask.objects.get(name="Daily savings")
    assert savings.crontab.hour == "3"
    stale = PeriodicTask.objects.get(name="Stale agents")
    assert stale.interval.every == 2 and stale.enabled is False
    assert PeriodicTask.objects.filter(name="Daily savings").count() == 1


def test_sync_twice_writes_nothing_the_second_time():
    periodic_tasks_sync()
    before = list(PeriodicTask.objects.order_by("pk").values("pk", "last_run_at", "date_changed"))
    assert periodic_tasks_sync() == []
    assert list(PeriodicTask.objects.order_by("pk").values("pk", "last_run_at", "date_changed")) == before


def test_staff_see_and_can_pause_the_jobs(admin_client):
    r = admin_client.get("/admin/django_celery_beat/periodictask/")
    assert r.status_code == 200
    assert b"Pool risk analysis" in r.content
    task = PeriodicTask.objects.get(name="Pool risk analysis")
    r = admin_client.post(
        "/admin/django_celery_beat/periodictask/",
        {"action": "disable_tasks", "_selected_action": [task.pk]},
    )
    assert r.status_code in (200, 302)
    task.refresh_from_db()
    assert task.enabled is False


def test_check_command_is_clean():
    call_command("check")
