"""Ten simultaneous termination posts against a live server on the real database: one replica."""
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from agents.models import AgentStatus, TerminationEvent
from agents.tests.factories import AgentFactory, SpotPoolFactory
from clients.tests.factories import ClientFactory

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

POSTS = 10


def test_ten_concurrent_notices_ask_for_exactly_one_replica(live_server):
    client = ClientFactory()
    pool = SpotPoolFactory(az="us-east-1a")
    SpotPoolFactory(az="us-east-1b", risk_recommendation="safe")
    agent = AgentFactory(client=client, current_pool=pool)
    url = f"{live_server.url}/api/agents/{agent.pk}/termination-imminent"
    body = {"instance_id": agent.instance_id, "termination_time": "2025-01-01T00:02:00Z",
            "detected_at": "2026-11-26T19:23:57.243454"}
    headers = {"Authorization": f"Bearer {client.token}", "Content-Type": "application/json"}
    start = threading.Barrier(POSTS, timeout=30)

    def fire(_):
        with requests.Session() as session:
            start.wait()  # release all ten at the same instant
            return session.post(url, json=body, headers=headers, timeout=30)

    with ThreadPoolExecutor(max_workers=POSTS) as pool_executor:
        responses = list(pool_executor.map(fire, range(POSTS)))

    assert [r.status_code for r in responses] == [200] * POSTS, [r.text for r in responses]
    answers = [r.json() for r in responses]
    assert sum(a["create_emergency_replica"] is True for a in answers) == 1
    assert {a["target_pool_id"] for a in answers} == {"t3.medium.us-east-1b"}
    event = TerminationEvent.objects.get(agent=agent)
    assert event.notice_count == POSTS
    agent.refresh_from_db()
    assert agent.status == AgentStatus.TERMINATING
