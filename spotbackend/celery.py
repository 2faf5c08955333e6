import os
from pathlib import Path

from celery import Celery

from spotbackend import logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spotbackend.settings")

# Every task's base class: a scheduled job never runs twice for the same slot (spotbackend/jobs.py).
app = Celery("spotbackend", task_cls="spotbackend.jobs:SlotOnceTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Task id and the enqueuing request's id on the task's log records; JSON lines in the worker and beat
# too with LOG_FORMAT=json (spotbackend/logs.py).
logs.connect_celery()


@app.on_after_configure.connect
def _make_filesystem_broker_folders(sender, **kwargs):
    """The embedded filesystem broker fails (FileNotFoundError) on a missing folder: every process that
    publishes or consumes (worker, `manage.py` command, shell) creates them on first use of the app."""
    if not str(sender.conf.broker_url or "").startswith("filesystem:"):
        return
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)
