"""Per-agent settings the dashboard changes, and the mutual-exclusivity rule (docs/ARCHITECTURE.md §4).

Automatic switching and manual replicas fight over the same instance: the model would switch the
primary away while a hand-made replica waits to take over. So turning one on turns the other off and
ends the replicas the other one made.
"""
from django.db import transaction

from agents import cache

from agents.locks import agent_lock
from agents.models import CONFIG_FIELDS, REPLICA_LIMIT, Agent, AgentStatus, ReplicaType, Severity
from agents.services.events import system_event_log
from agents.services.replicas import replicas_terminate
from agents.states import agent_status_transition
from spotbackend.exceptions import InvalidInput

SETTING_FIELDS = ("auto_switch_enabled", "auto_terminate_enabled", "manual_replica_enabled", "replica_count")
REPLICA_COUNT_MAX = REPLICA_LIMIT


@transaction.atomic
def agent_settings_update(*, agent: Agent, changes: dict) -> Agent:
    """Apply the dashboard's settings and return the agent (the replicas it ended are in the
    `mutual_exclusivity_enforced` system event).

    `changes` holds any of SETTING_FIELDS (already typed). The dashboard sends its whole settings
    form, so a flag counts as *turned on* only when it goes from off to on: switching manual
    replicas on while the stale form still says auto-switch is on turns auto-switch off. Turning
    both on at once (or leaving both on) is a 400 naming the conflict."""
    agent = agent_lock(agent_id=agent.pk)
    unknown = set(changes) - set(SETTING_FIELDS)
    if unknown:
        raise ValueError(f"not settings: {sorted(unknown)}")
    count = changes.get("replica_count")
    if count is not None and not (0 <= count <= REPLICA_COUNT_MAX):
        raise InvalidInput(fields={"replica_count": f"Must be between 0 and {REPLICA_COUNT_MAX}."})

    before = {f: getattr(agent, f) for f in SETTING_FIELDS}
    after = {**before, **{k: v for k, v in changes.items() if v is not None}}
    manual_on = after["manual_replica_enabled"] and not before["manual_replica_enabled"]
    auto_on = after["auto_switch_enabled"] and not before["auto_switch_enabled"]
    conflict = (
        "auto_switch_enabled and manual_replica_enabled cannot both be enabled: "
        "automatic switching and manual replicas are mutually exclusive."
    )
    if manual_on and auto_on:
        raise InvalidInput(conflict)
    if manual_on:
        after["auto_switch_enabled"] = False
    elif auto_on:
        after["manual_replica_enabled"] = False
    if after["auto_switch_enabled"] and after["manual_replica_enabled"]:
        raise InvalidInput(conflict)

    ended: list[str] = []
    if manual_on:
        ended = replicas_terminate(agent=agent, replica_type=ReplicaType.EMERGENCY, reason="manual replicas enabled: automatic replicas ended")
    elif auto_on:
        ended = replicas_terminate(agent=agent, replica_type=ReplicaType.MANUAL, reason="auto-switch enabled: manual replicas ended")

    changed = [f for f in SETTING_FIELDS if after[f] != before[f]]
    if changed:
        for f in changed:
            setattr(agent, f, after[f])
        agent.save(update_fields=changed + ["updated_at"])
        system_event_log(
            agent=agent,
            event_type="agent_settings_changed",
            message="Settings changed: " + ", ".join(f"{f} {before[f]} -> {after[f]}" for f in changed),
            metadata={"before": before, "after": after},
        )
    if manual_on or auto_on:
        winner, loser = (
            ("manual_replica_enabled", "auto_switch_enabled") if manual_on else ("auto_switch_enabled", "manual_replica_enabled")
        )
        system_event_log(
            agent=agent,
            event_type="mutual_exclusivity_enforced",
            severity=Severity.WARNING if (before[loser] or ended) else Severity.INFO,
            message=f"{winner} turned on: {loser} off, {len(ended)} "
            f"{'automatic' if manual_on else 'manual'} replica(s) terminated",
            metadata={"enabled": winner, "disabled": loser, "terminated_replica_ids": ended},
        )
    _config_changed(agent)
    return agent


def _config_changed(agent: Agent) -> None:
    cache.agent_config_changed(agent.pk, {**{f: getattr(agent, f) for f in CONFIG_FIELDS}, "client_id": agent.client_id})


@transaction.atomic
def agent_enabled_toggle(*, agent: Agent) -> Agent:
    """Flip `enabled`; the agent reads it from its config. Only online/disabled follow the flag:
    switching, terminating and offline end by their own events."""
    agent = agent_lock(agent_id=agent.pk)
    agent.enabled = not agent.enabled
    agent.save(update_fields=["enabled", "updated_at"])
    if agent.enabled and agent.status == AgentStatus.DISABLED:
        agent_status_transition(agent=agent, to=AgentStatus.ONLINE)
    elif not agent.enabled and agent.status == AgentStatus.ONLINE:
        agent_status_transition(agent=agent, to=AgentStatus.DISABLED)
    system_event_log(
        agent=agent,
        event_type="agent_enabled" if agent.enabled else "agent_disabled",
        message=f"Agent {'enabled' if agent.enabled else 'disabled'} from the dashboard",
        metadata={"enabled": agent.enabled},
    )
    _config_changed(agent)
    return agent
