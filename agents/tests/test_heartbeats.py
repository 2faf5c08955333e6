"""agents/services/heartbeats.py: the primary's heartbeat."""

import pytest

from agents.models import Agent
from agents.services.heartbeats import HeartbeatPayload, agent_heartbeat
from agents.services.registration import RegisterPayload, agent_register

pytestmark = pytest.mark.django_db


def reg(client, instance_id, logical="web-1", mode="spot", az="us-east-1a"):
    return agent_register(
        client=client,
        payload=RegisterPayload(instance_id=instance_id, logical_agent_id=logical, mode=mode, az=az,
                                instance_type="t3.medium", region="us-east-1", hostname="h"),
    )


class TestHeartbeat:
    def test_missing_fields_never_overwrite(self, client_obj):
        agent, _ = reg(client_obj, "i-1")
        agent_heartbeat(agent=agent, payload=HeartbeatPayload(status="online"))
        agent.refresh_from_db()
        assert (agent.instance_type, agent.az, agent.current_mode) == ("t3.medium", "us-east-1a", "spot")

    def test_non_primary_heartbeat_changes_nothing(self, client_obj):
        reg(client_obj, "i-1")
        agent, _ = reg(client_obj, "i-2", mode="ondemand")
        before = Agent.objects.filter(pk=agent.pk).values("instance_id", "current_mode", "status", "az").get()
        out = agent_heartbeat(agent=agent, payload=HeartbeatPayload(status="disabled", instance_id="i-1", mode="spot",
                                                                    az="us-east-1c"))
        assert out == "non_primary"
        after = Agent.objects.filter(pk=agent.pk).values("instance_id", "current_mode", "status", "az").get()
        assert before == after

    def test_offline_without_id_marks_offline_when_alone(self, client_obj):
        agent, _ = reg(client_obj, "i-1")
        assert agent_heartbeat(agent=agent, payload=HeartbeatPayload(status="offline")) == "primary"
        agent.refresh_from_db()
        assert agent.status == "offline"

    def test_heartbeat_does_not_end_switching(self, client_obj):
        agent, _ = reg(client_obj, "i-1")
        Agent.objects.filter(pk=agent.pk).update(status="switching")
        agent.refresh_from_db()
        agent_heartbeat(agent=agent, payload=HeartbeatPayload(status="online", instance_id="i-1"))
        agent.refresh_from_db()
        assert agent.status == "switching"
