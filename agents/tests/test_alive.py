"""One definition of "alive" (agents/models.py): the query, the row method, the reader's status and the
sweep's set agree, at the timeout's edge too."""
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from agents.models import Agent
from agents.services.status import agent_effective_status
from agents.tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


def test_alive_query_row_method_status_and_sweep_agree():
    now = timezone.now()
    timeout = timedelta(seconds=settings.AGENT_HEARTBEAT_TIMEOUT)
    cases = {
        "fresh": ("online", now - timedelta(seconds=1)),
        "at_edge": ("switching", now - timeout),
        "just_late": ("online", now - timeout - timedelta(seconds=1)),
        "offline_fresh": ("offline", now),
        "never": ("online", None),
        "disabled_fresh": ("disabled", now),
    }
    agents = {name: AgentFactory(status=status, last_heartbeat_at=hb) for name, (status, hb) in cases.items()}
    Agent.objects.filter(pk=agents["never"].pk).update(registered_at=now - 2 * timeout)

    alive = set(Agent.objects.alive(now=now).values_list("pk", flat=True))
    assert alive == {agents[n].pk for n in ("fresh", "at_edge", "disabled_fresh")}
    for agent in Agent.objects.all():
        assert agent.is_alive(now=now) == (agent.pk in alive)
        assert (agent_effective_status(agent=agent, now=now) != "offline") == (agent.pk in alive)
    stale = set(Agent.objects.stale(now=now).values_list("pk", flat=True))
    # The sweep takes what is neither alive nor already offline.
    assert stale == {agents["just_late"].pk, agents["never"].pk}


def test_an_agent_never_heard_gets_the_timeout_from_its_registration():
    now = timezone.now()
    agent = AgentFactory(last_heartbeat_at=None)
    assert not agent.is_alive(now=now)
    assert not Agent.objects.stale(now=now).filter(pk=agent.pk).exists()
