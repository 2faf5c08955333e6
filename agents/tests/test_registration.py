"""agents/services/registration.py: register and the primary instance."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.models import Agent, Instance, SystemEvent
from agents.services.registration import RegisterPayload, agent_register
from agents.tests.factories import AgentFactory, CommandFactory, ReplicaFactory

pytestmark = pytest.mark.django_db


def reg(client, instance_id, logical="web-1", mode="spot", az="us-east-1a"):
    return agent_register(
        client=client,
        payload=RegisterPayload(instance_id=instance_id, logical_agent_id=logical, mode=mode, az=az,
                                instance_type="t3.medium", region="us-east-1", hostname="h"),
    )


class TestRegister:
    def test_identity_is_client_and_logical_id(self, client_obj, other_client):
        a1, created1 = reg(client_obj, "i-1")
        a2, created2 = reg(client_obj, "i-1")
        b, _ = reg(other_client, "i-1")
        assert created1 and not created2 and a1.pk == a2.pk
        assert b.pk != a1.pk  # same logical id under another client is another agent

    def test_logical_id_defaults_to_instance_id(self, client_obj):
        agent, _ = reg(client_obj, "i-9", logical="")
        assert agent.logical_agent_id == "i-9"

    def test_new_instance_becomes_the_only_primary(self, client_obj):
        agent, _ = reg(client_obj, "i-1")
        agent2, _ = reg(client_obj, "i-2", az="us-east-1b")
        assert agent2.pk == agent.pk and agent2.instance_id == "i-2"
        states = dict(Instance.objects.filter(agent=agent).values_list("instance_id", "state"))
        assert states == {"i-1": "replaced", "i-2": "primary"}
        assert Instance.objects.filter(agent=agent, is_primary=True).count() == 1

    def test_replaced_instance_coming_back_does_not_steal_primary(self, client_obj):
        reg(client_obj, "i-1")
        reg(client_obj, "i-2")
        agent, _ = reg(client_obj, "i-1")  # systemd restarted the agent on the old instance
        assert agent.instance_id == "i-2"
        old = Instance.objects.get(agent=agent, instance_id="i-1")
        assert old.state == "replaced" and old.last_seen_at is not None
        assert SystemEvent.objects.filter(agent=agent, event_type="non_primary_registered").exists()

    def test_replica_registering_does_not_steal_primary(self, client_obj):
        agent, _ = reg(client_obj, "i-1")
        ReplicaFactory(agent=agent, instance_id="i-r", status="ready")
        agent, _ = reg(client_obj, "i-r")
        assert agent.instance_id == "i-1"

    def test_unknown_values_do_not_overwrite(self, client_obj):
        agent, _ = reg(client_obj, "i-1")
        agent_register(client=client_obj, payload=RegisterPayload(instance_id="i-1", logical_agent_id="web-1",
                                                                   instance_type="unknown", az="unknown"))
        agent.refresh_from_db()
        assert agent.instance_type == "t3.medium" and agent.az == "us-east-1a"

    def test_database_refuses_two_primaries_and_two_open_commands(self, client_obj):
        agent = AgentFactory(client=client_obj)
        with pytest.raises(IntegrityError), transaction.atomic():
            Instance.objects.create(agent=agent, client=client_obj, instance_id="i-x", started_at=timezone.now())
        CommandFactory(agent=agent)
        with pytest.raises(IntegrityError), transaction.atomic():
            CommandFactory(agent=agent)

    def test_database_refuses_bad_enum(self, client_obj):
        agent = AgentFactory(client=client_obj)
        with pytest.raises(IntegrityError), transaction.atomic():
            Agent.objects.filter(pk=agent.pk).update(status="sleeping")
