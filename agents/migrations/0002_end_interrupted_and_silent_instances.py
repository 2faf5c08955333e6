"""Issue 9, item 1: end the stored intervals of instances that stopped costing money.

Before this, an interrupted instance stayed open until the agent's next instance registered (or for
ever), and a silent agent's instance kept earning. This sets, once:
- an instance with a termination notice whose time has passed: ended_at = min(ended_at, termination time),
  unless its agent kept heartbeating from it well after that time (the notice was withdrawn);
- the primary instance of an `offline` agent: ended_at = min(ended_at, last heartbeat).
Stored savings snapshots are not touched: rerun `manage.py recalculate_savings --from <first day>`
afterwards (README.md, "Correcting stored savings")."""
from datetime import timedelta

from django.db import migrations
from django.utils import timezone

SURVIVED_BY = timedelta(minutes=5)


def _earlier(current, at):
    return at if current is None or at < current else current


def forwards(apps, schema_editor):
    Instance = apps.get_model("agents", "Instance")
    TerminationEvent = apps.get_model("agents", "TerminationEvent")
    now = timezone.now()
    notices = TerminationEvent.objects.filter(
        event_type="termination_notice", termination_time__isnull=False, termination_time__lte=now
    ).values_list("agent_id", "instance_id", "termination_time")
    for agent_id, instance_id, termination_time in notices.iterator():
        inst = Instance.objects.filter(agent_id=agent_id, instance_id=instance_id).select_related("agent").first()
        if inst is None:
            continue
        hb = inst.agent.last_heartbeat_at
        if inst.is_primary and inst.agent.instance_id == instance_id and hb and hb > termination_time + SURVIVED_BY:
            continue
        end = _earlier(inst.ended_at, termination_time)
        if end != inst.ended_at:
            Instance.objects.filter(pk=inst.pk).update(ended_at=end)
    for inst in Instance.objects.filter(is_primary=True, agent__status="offline").select_related("agent").iterator():
        end = _earlier(inst.ended_at, inst.agent.last_heartbeat_at or inst.started_at)
        if end != inst.ended_at:
            Instance.objects.filter(pk=inst.pk).update(ended_at=end)


class Migration(migrations.Migration):
    dependencies = [("agents", "0001_initial")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
