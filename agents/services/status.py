"""The agent status state machine (ARCHITECTURE.md §3): every status change goes through here."""
from django.db.models import Q
from django.utils import timezone

from agents.models import Agent, AgentStatus

S = AgentStatus
# Which statuses each status may move to. Offline and terminating can be entered from anywhere.
ALLOWED: dict[str, set[str]] = {
    S.ONLINE: {S.DISABLED, S.SWITCHING, S.TERMINATING, S.OFFLINE},
    S.DISABLED: {S.ONLINE, S.SWITCHING, S.TERMINATING, S.OFFLINE},
    S.SWITCHING: {S.ONLINE, S.DISABLED, S.TERMINATING, S.OFFLINE},
    S.TERMINATING: {S.ONLINE, S.DISABLED, S.SWITCHING, S.OFFLINE},
    S.OFFLINE: {S.ONLINE, S.DISABLED, S.SWITCHING, S.TERMINATING},
}
# A heartbeat's status may not end these: they end with a switch, a new primary, or a sweep.
STICKY_AGAINST_HEARTBEAT = {S.SWITCHING, S.TERMINATING}


class IllegalTransition(Exception):
    pass


def agent_status_can_change(*, current: str, to: str) -> bool:
    return current == to or to in ALLOWED.get(current, set())


def agent_status_transition(*, agent: Agent, to: str, save: bool = True) -> bool:
    """Move the agent to `to`; return whether it changed. Refuses transitions outside ALLOWED."""
    if agent.status == to:
        return False
    if not agent_status_can_change(current=agent.status, to=to):
        raise IllegalTransition(f"agent {agent.pk}: {agent.status} -> {to} is not allowed")
    agent.status = to
    if save:
        agent.save(update_fields=["status", "updated_at"])
    return True


def agent_effective_status(*, agent: Agent, now=None) -> str:
    """The status a reader sees: `offline` once the heartbeat is too old, before any sweep runs."""
    from django.conf import settings

    now = now or timezone.now()
    if agent.status == S.OFFLINE:
        return S.OFFLINE
    hb = agent.last_heartbeat_at
    if hb is None or (now - hb).total_seconds() > settings.AGENT_HEARTBEAT_TIMEOUT:
        return S.OFFLINE
    return agent.status


def stale_agents_q(*, now=None) -> Q:
    """Agents the sweep turns offline: not offline yet and no heartbeat within the timeout."""
    from datetime import timedelta

    from django.conf import settings

    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.AGENT_HEARTBEAT_TIMEOUT)
    return ~Q(status=S.OFFLINE) & (Q(last_heartbeat_at__lt=cutoff) | Q(last_heartbeat_at__isnull=True, registered_at__lt=cutoff))
