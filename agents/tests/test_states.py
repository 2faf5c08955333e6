"""Every state machine is real (docs/ARCHITECTURE.md §3): for each of the four, every (from, to) pair
is tried through its one transition function, which moves exactly the pairs its table allows and
refuses the rest without touching the row. Each table must forbid something."""
from itertools import product

import pytest
from django.utils import timezone

from agents.models import (
    Agent,
    AgentStatus,
    Command,
    CommandStatus,
    Replica,
    ReplicaStatus,
    TerminationEvent,
    TerminationEventStatus,
)
from agents.states import (
    AGENT_ALLOWED,
    COMMAND_ALLOWED,
    COMMAND_OPEN,
    EVENT_ALLOWED,
    REPLICA_ALLOWED,
    IllegalTransition,
    agent_status_after_heartbeat,
    agent_status_sources,
    agent_status_transition,
    command_transition,
    commands_move,
    replica_transition,
    termination_event_transition,
    termination_events_move,
)
from agents.tests.factories import AgentFactory, CommandFactory, ReplicaFactory, TerminationEventFactory
from spotbackend.exceptions import ConflictError

pytestmark = pytest.mark.django_db


def pairs(choices):
    return list(product(choices.values, choices.values))


@pytest.mark.parametrize("table,choices", [
    (AGENT_ALLOWED, AgentStatus), (COMMAND_ALLOWED, CommandStatus), (REPLICA_ALLOWED, ReplicaStatus),
    (EVENT_ALLOWED, TerminationEventStatus),
])
def test_each_table_names_every_state_and_forbids_some_moves(table, choices):
    assert set(table) == set(choices.values)
    forbidden = [(a, b) for a, b in pairs(choices) if a != b and b not in table[a]]
    assert forbidden, "a table that allows every move forbids nothing"


@pytest.mark.parametrize("start,to", pairs(AgentStatus))
def test_agent_status_every_pair(start, to):
    agent = AgentFactory(status=start)
    if start == to:
        assert agent_status_transition(agent=agent, to=to) is False
    elif to in AGENT_ALLOWED[start]:
        assert agent_status_transition(agent=agent, to=to) is True
    else:
        with pytest.raises(IllegalTransition):
            agent_status_transition(agent=agent, to=to)
    assert Agent.objects.get(pk=agent.pk).status == (to if to in AGENT_ALLOWED[start] else start)


def _command(start: str) -> Command:
    is_open = True if start in COMMAND_OPEN else None
    return CommandFactory(status=start, is_open=is_open)


@pytest.mark.parametrize("start,to", pairs(CommandStatus))
def test_command_every_pair(start, to):
    command = _command(start)
    if start == to:
        assert command_transition(command=command, to=to) is False
    elif to in COMMAND_ALLOWED[start]:
        assert command_transition(command=command, to=to, success=to == CommandStatus.SUCCEEDED) is True
    else:
        with pytest.raises(IllegalTransition):
            command_transition(command=command, to=to)
    stored = Command.objects.get(pk=command.pk)
    moved = to in COMMAND_ALLOWED[start]
    assert stored.status == (to if moved else start)
    # The open flag and the completion time follow the status (the check constraint holds).
    assert stored.is_open == (True if stored.status in COMMAND_OPEN else None)
    if moved and to not in COMMAND_OPEN:
        assert stored.completed_at is not None


def test_command_claim_is_compare_and_set():
    """Two requests holding the same pending command: only the first move lands."""
    command = _command(CommandStatus.PENDING)
    stale_copy = Command.objects.get(pk=command.pk)
    assert command_transition(command=command, to=CommandStatus.DELIVERED) is True
    assert command_transition(command=stale_copy, to=CommandStatus.DELIVERED) is False
    assert Command.objects.get(pk=command.pk).status == CommandStatus.DELIVERED


def test_bulk_command_move_touches_only_rows_the_table_allows():
    commands = {s: _command(s) for s in CommandStatus.values}
    moved = commands_move(queryset=Command.objects.filter(pk__in=[c.pk for c in commands.values()]),
                          to=CommandStatus.SUPERSEDED)
    assert moved == 1  # only a pending command may be superseded
    stored = Command.objects.get(pk=commands["pending"].pk)
    assert (stored.status, stored.is_open) == ("superseded", None) and stored.completed_at is not None
    assert Command.objects.get(pk=commands["delivered"].pk).status == "delivered"


@pytest.mark.parametrize("start,to", pairs(ReplicaStatus))
def test_replica_every_pair(start, to):
    replica = ReplicaFactory(status=start)
    if start == to:
        assert replica_transition(replica=replica, to=to) is False
    elif to in REPLICA_ALLOWED[start]:
        assert replica_transition(replica=replica, to=to) is True
    else:
        with pytest.raises(IllegalTransition):
            replica_transition(replica=replica, to=to)
    assert Replica.objects.get(pk=replica.pk).status == (to if to in REPLICA_ALLOWED[start] else start)


@pytest.mark.parametrize("start,to", pairs(TerminationEventStatus))
def test_termination_event_every_pair(start, to):
    event = TerminationEventFactory(status=start)
    if start == to:
        assert termination_event_transition(event=event, to=to) is False
    elif to in EVENT_ALLOWED[start]:
        assert termination_event_transition(event=event, to=to) is True
    else:
        with pytest.raises(IllegalTransition):
            termination_event_transition(event=event, to=to)
    stored = TerminationEvent.objects.get(pk=event.pk)
    assert stored.status == (to if to in EVENT_ALLOWED[start] else start)


def test_illegal_transition_is_a_conflict():
    assert issubclass(IllegalTransition, ConflictError)


def test_bulk_event_move_touches_only_rows_the_table_allows():
    agent = AgentFactory()
    events = {s: TerminationEventFactory(agent=agent, status=s) for s in TerminationEventStatus.values}
    moved = termination_events_move(queryset=TerminationEvent.objects.filter(agent=agent),
                                    to=TerminationEventStatus.FAILED, now=timezone.now())
    assert moved == 2  # detected and handling; resolved -> failed is a staff correction, not a bulk close
    stored = {e.pk: e.status for e in TerminationEvent.objects.filter(agent=agent)}
    assert stored[events["detected"].pk] == stored[events["handling"].pk] == "failed"
    assert stored[events["resolved"].pk] == "resolved"


def test_offline_is_reachable_from_every_other_status_in_bulk():
    assert set(agent_status_sources(AgentStatus.OFFLINE)) == set(AgentStatus.values) - {AgentStatus.OFFLINE}


@pytest.mark.parametrize("start,reported,expected", [
    ("online", "disabled", "disabled"),
    ("disabled", "online", "online"),
    ("switching", "online", "switching"),  # sticky: ends with the switch, not a heartbeat
    ("terminating", "disabled", "terminating"),
    ("terminating", "offline", "offline"),
    ("offline", "", "online"),  # an offline agent that reports nothing is back (enabled)
    ("online", "", "online"),
    ("offline", "disabled", "disabled"),
])
def test_heartbeat_status_rule(start, reported, expected):
    agent = Agent(status=start, enabled=True)
    assert agent_status_after_heartbeat(agent=agent, reported=reported) == expected
