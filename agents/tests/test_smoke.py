from agents.tests import payloads as P


def test_register_then_config(api, client_obj):
    r = api.post("/api/agents/register", P.register_v4(token=client_obj.token), format="json")
    assert r.status_code == 200, r.content
    agent_id = r.json()["agent_id"]
    r = api.get(f"/api/agents/{agent_id}/config")
    assert r.json()["enabled"] is True
