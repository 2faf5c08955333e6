"""The replica lifecycle job (issue 9, item 5; docs/ARCHITECTURE.md §3): no replica waits for ever.
Every move it makes goes through agents/states.py `replica_transition` or a promotion."""
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agents.locks import agent_lock
from agents.models import DecisionKind, Mode, Replica, ReplicaStatus, ReplicaType
from agents.services.decisions import decision_record
from agents.services.events import system_event_log
from agents.services.replicas import replica_promote
from agents.states import replica_transition
from notifications.models import EventType
from notifications.services import webhook_event_emit

R = ReplicaStatus


def _sweep_one(*, agent_id, replica_id, now: datetime) -> str:
    """Settle one replica under its agent's lock; return what was done ('' when nothing was due any more)."""
    with transaction.atomic():
        agent = agent_lock(agent_id=agent_id)
        replica = Replica.objects.select_for_update().filter(pk=replica_id, agent=agent).first()
        if replica is None:
            return ""
        stuck_for = timedelta(minutes=settings.REPLICA_STUCK_MINUTES)
        minutes = settings.REPLICA_STUCK_MINUTES
        if replica.status in (R.LAUNCHING, R.SYNCING) and replica.updated_at <= now - stuck_for:
            reason = f"stuck in {replica.status} for more than {minutes} min (the agent never reported it ready)"
        elif replica.status == R.PROMOTING:
            command = replica.promote_command
            if command is not None and command.is_open:
                return ""  # the switch is on its way (an unanswered one expires after COMMAND_DELIVERY_TIMEOUT)
            failed = command is None or command.success is False
            if not failed and replica.updated_at > now - stuck_for:
                return ""  # the switch succeeded a moment ago: give the new instance time to register
            reason = ("its promotion switch " + (f"ended {command.status}" if command else "is gone")
                      + "; no new instance registered in its pool")
        elif (replica.status == R.READY and replica.replica_type == ReplicaType.EMERGENCY and replica.instance_id
              and replica.termination_event is not None and replica.termination_event.termination_time is not None
              and replica.termination_event.termination_time <= now
              and replica.termination_event.instance_id == agent.instance_id):
            deadline = replica.termination_event.termination_time
            old_instance_id = agent.instance_id
            replica_promote(agent=agent, replica_id=replica.pk, now=now)
            decision_record(agent=agent, kind=DecisionKind.PROMOTION, action="promote_overdue_replica",
                            reason=f"the notice's deadline {deadline:%Y-%m-%d %H:%M:%S}Z passed and the agent did "
                            f"not register its ready emergency replica", instance_id=old_instance_id,
                            target_pool_id=replica.pool_id or "", target_mode=Mode.SPOT if replica.pool_id else
                            Mode.ONDEMAND, deadline=deadline, termination_event=replica.termination_event,
                            replica_id=replica.pk)
            system_event_log(
                agent=agent, event_type="replica_promoted_overdue", severity="warning",
                message=f"Emergency replica {replica.instance_id} promoted by the server: the notice's deadline "
                f"{deadline:%Y-%m-%d %H:%M:%S}Z passed and its agent did not register it",
                metadata={"replica_id": str(replica.pk), "termination_event_id": replica.termination_event_id},
            )
            return "promoted"
        else:
            return ""
        previous = replica.status
        replica_transition(replica=replica, to=R.TERMINATED, now=now, reason=reason)
        decision_record(agent=agent, kind=DecisionKind.EXPIRY, action=f"end_{previous}_replica", reason=reason,
                        instance_id=replica.instance_id, target_pool_id=replica.pool_id or "", replica_id=replica.pk,
                        command_id=replica.promote_command_id)
        system_event_log(
            agent=agent, event_type="replica_expired", severity="warning",
            message=f"Replica {replica.instance_id or replica.pk} ended: {reason}",
            metadata={"replica_id": str(replica.pk), "previous_status": previous, "reason": reason},
        )
        if replica.replica_type == ReplicaType.EMERGENCY:
            webhook_event_emit(client_id=agent.client_id, event_type=EventType.REPLICA_FAILED, now=now, data={
                "agent_id": str(agent.pk), "hostname": agent.hostname, "replica_id": str(replica.pk),
                "instance_id": replica.instance_id, "pool_id": replica.pool_id or "",
                "previous_status": previous, "reason": reason,
            })
        return "expired"


def replicas_sweep(*, now: datetime | None = None) -> dict:
    """The replica lifecycle job (issue 9, item 5): no replica waits for ever. A replica in launching or
    syncing longer than REPLICA_STUCK_MINUTES is ended with the reason; a promoting one whose switch
    closed without landing is ended; a ready emergency replica whose notice's deadline passed while
    the dying instance is still the primary is promoted. One transaction per replica, agent row first;
    running it again finds nothing to do."""
    now = now or timezone.now()
    stuck_before = now - timedelta(minutes=settings.REPLICA_STUCK_MINUTES)
    candidates = Replica.objects.filter(
        Q(status__in=(R.LAUNCHING, R.SYNCING), updated_at__lte=stuck_before)
        | Q(status=R.PROMOTING)
        | Q(status=R.READY, replica_type=ReplicaType.EMERGENCY, termination_event__termination_time__lte=now)
    ).values_list("agent_id", "pk")
    done = {"expired": 0, "promoted": 0}
    for agent_id, replica_id in list(candidates[:1000]):
        outcome = _sweep_one(agent_id=agent_id, replica_id=replica_id, now=now)
        if outcome:
            done[outcome] += 1
    return done
