"""Issue 9, item 3: remove the instance rows that heartbeats from never-registered instance ids added.

Such a row was created by a heartbeat as `replaced` with started_at == ended_at (it never was the
agent's instance, so it never had an interval), and its id is neither a replica of the agent nor one
side of a switch the agent reported. A replaced instance that really ran was primary before (it has
an interval), and a replica's instance is in `replicas`; both are kept."""
from django.db import migrations
from django.db.models import F


def forwards(apps, schema_editor):
    Instance = apps.get_model("agents", "Instance")
    Replica = apps.get_model("agents", "Replica")
    Switch = apps.get_model("agents", "Switch")
    candidates = Instance.objects.filter(state="replaced", is_primary__isnull=True, ended_at=F("started_at"))
    phantom_pks = []
    for pk, agent_id, instance_id in candidates.values_list("pk", "agent_id", "instance_id").iterator():
        if Replica.objects.filter(agent_id=agent_id, instance_id=instance_id).exists():
            continue
        if Switch.objects.filter(agent_id=agent_id, old_instance_id=instance_id).exists() or Switch.objects.filter(
            agent_id=agent_id, new_instance_id=instance_id
        ).exists():
            continue
        phantom_pks.append(pk)
    for start in range(0, len(phantom_pks), 500):
        Instance.objects.filter(pk__in=phantom_pks[start:start + 500]).delete()


class Migration(migrations.Migration):
    dependencies = [("agents", "0004_decisions")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
