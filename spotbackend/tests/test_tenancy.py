"""Tenancy (issue 4, item 5): every client- and agent-facing route under /api/, called with a second
client's token on the first client's real ids, answers 404 (or 403) and changes nothing.

Routes are read from the URL resolver, so a route added later is walked automatically; a route this
test cannot fill (an unknown path parameter) or an unscoped route nobody reviewed fails the test."""
from decimal import Decimal

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver

from agents.models import Agent, Command, Decision, Instance, Replica, Switch, TerminationEvent
from clients.models import AuditEntry, Client, ClientToken
from clients.services import client_token_create
from notifications.models import Notification, WebhookEndpoint
from notifications.services import webhook_endpoint_create, webhook_endpoint_test
from agents.tests import payloads as P
from agents.tests.factories import (
    AgentFactory,
    CommandFactory,
    ReplicaFactory,
    SpotPoolFactory,
    SwitchFactory,
    TerminationEventFactory,
)

# Routes under /api/ that name no object, so there is no other client's object to reach: they act
# on the caller's own client (or describe the API). Anything else must carry an id to be walked.
UNSCOPED = {
    "api/agents/register": "registers an agent under the caller's own client",
    "api/client/validate": "answers about the caller's own token",
    "api/schema": "the OpenAPI description, no data",
    "api/docs": "Swagger UI, no data",
    "api/redoc": "ReDoc, no data",
}
METHODS = ("get", "post", "put", "patch", "delete")


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p


def api_routes() -> list[tuple[str, URLPattern]]:
    return [(route, p) for route, p in _walk(get_resolver().url_patterns) if route.startswith("api/")]


def view_methods(pattern: URLPattern) -> list[str]:
    view_class = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
    return [m for m in METHODS if view_class is not None and hasattr(view_class, m)]


def path_params(route: str) -> list[str]:
    import re

    return re.findall(r"<(?:\w+:)?(\w+)>", route)


def cases():
    out = []
    for route, pattern in api_routes():
        if not path_params(route):
            continue
        for method in view_methods(pattern):
            out.append(pytest.param(route, method, id=f"{method.upper()} /{route}"))
    return out


@pytest.fixture
def victim(client_obj):
    """The first client's fleet: every kind of object a path can name."""
    pool = SpotPoolFactory(az="us-east-1a", latest_price=Decimal("0.0125"))
    SpotPoolFactory(az="us-east-1b", latest_price=Decimal("0.0131"))
    agent = AgentFactory(client=client_obj, current_pool=pool, az="us-east-1a", auto_switch_enabled=True)
    command = CommandFactory(agent=agent, target_mode="spot", target_pool=pool)
    replica = ReplicaFactory(agent=agent, pool=pool, replica_type="emergency", status="ready")
    switch = SwitchFactory(agent=agent)
    notice = TerminationEventFactory(agent=agent)
    Decision.objects.create(client=client_obj, agent=agent, kind="expiry", action="expire_command", reason="victim's")
    endpoint = webhook_endpoint_create(client=client_obj, url="https://hooks.example.com/victim",
                                       events=["termination.notice"])
    delivery = webhook_endpoint_test(endpoint=endpoint)
    token, _ = client_token_create(client=client_obj, name="victim's agents", scope="agent")
    AuditEntry.objects.create(client=client_obj, token_name="victim", action="agent.settings",
                              created_at=notice.detected_at)
    return {
        "webhook_id": str(endpoint.pk),
        "delivery_id": str(delivery.pk),
        "token_id": str(token.pk),
        "client_id": str(client_obj.pk),
        "agent_id": str(agent.pk),
        "command_id": str(command.pk),
        "instance_id": agent.instance_id,
        "replica_id": str(replica.pk),
        "switch_id": str(switch.pk),
        "event_id": str(notice.pk),
        "agent": agent,
    }


def body_for(route: str, ids: dict) -> dict:
    """A well-formed body, so that a missing tenancy check would really write something."""
    instance_id = ids["instance_id"]
    last = [part for part in route.split("/") if part and not part.startswith("<")][-1]
    bodies = {
        "heartbeat": P.heartbeat(instance_id=instance_id, status="offline"),
        "pricing-report": P.pricing_v4(instance_id=instance_id),
        "switch-report": P.switch_report_v4(old_id=instance_id, new_id="i-0intruder"),
        "executed": {"success": False, "message": "intruder"},
        "mark-command-executed": {"command_id": ids["command_id"], "success": False},
        "settings": {"manual_replica_enabled": True, "auto_switch_enabled": True, "replica_count": 3,
                     "dry_run": True},
        "issue-switch-command": {"target_mode": "ondemand", "target_pool_id": ""},
        "termination-imminent": {
            "instance_id": instance_id, "termination_time": "2026-11-26T19:25:00Z", "detected_at": "2026-11-26T19:23:57"
        },
        "rebalance-recommendation": {"instance_id": instance_id, "detected_at": "2026-11-26T19:23:57"},
        "cleanup-report": {"instance_id": instance_id, "cleanup": [], "timestamp": "2026-11-26T19:23:57"},
        "replicas": {"instance_id": "i-0intruder", "replica_type": "emergency", "parent_instance_id": instance_id,
                     "pool_id": "t3.medium.us-east-1a", "status": "ready"},
        "create-emergency-replica": {"instance_id": instance_id},
        "status": {"status": "terminated"},
        "webhooks": {"url": "https://hooks.example.com/intruder", "events": ["termination.notice"]},
        "tokens": {"name": "intruder", "scope": "dashboard"},
        "rotate": {"overlap_seconds": 60},
    }
    if route.endswith("<str:webhook_id>"):
        return {"url": "https://hooks.example.com/intruder", "enabled": False}
    return bodies.get(last, {})


def db_state(client) -> dict:
    """Row counts of every model, and every field of the first client's own rows."""
    state = {f"{m._meta.label}#count": m._default_manager.count() for m in apps.get_models()}
    state["client"] = sorted(map(repr, Client.objects.filter(pk=client.pk).values()))
    for model in (Agent, Command, Replica, Instance, Switch, TerminationEvent, Decision, WebhookEndpoint,
                  Notification, ClientToken, AuditEntry):
        field = "client" if any(f.name == "client" for f in model._meta.fields) else "agent__client"
        state[model._meta.label] = sorted(map(repr, model.objects.filter(**{field: client}).values()))
    return state


def test_every_api_route_is_walked():
    routes = api_routes()
    assert routes, "the URL resolver lists no /api/ routes"
    unscoped = {route for route, _ in routes if not path_params(route)}
    assert unscoped == set(UNSCOPED), "a route without an id must be reviewed and listed in UNSCOPED"
    for route, pattern in routes:
        assert view_methods(pattern), f"/{route}: no HTTP method found on its view"
    known = {"client_id", "agent_id", "command_id", "instance_id", "replica_id", "switch_id", "event_id",
             "webhook_id", "delivery_id", "token_id"}
    unknown = {(route, p) for route, _ in routes for p in path_params(route) if p not in known}
    assert not unknown, f"path parameters the tenancy walk cannot fill: {unknown}"
    walked = {c.values[0] for c in cases()}
    assert walked | unscoped == {route for route, _ in routes}
    # The dashboard's and the agent's known routes are among them.
    for expected in (
        "api/client/<str:client_id>",
        "api/client/<str:client_id>/agents",
        "api/client/<str:client_id>/instances",
        "api/client/<str:client_id>/switches",
        "api/client/<str:client_id>/replicas",
        "api/client/<str:client_id>/decisions",
        "api/client/instances/<str:instance_id>/pricing",
        "api/client/agents/<str:agent_id>/toggle-enabled",
        "api/client/agents/<str:agent_id>/settings",
        "api/agents/<str:agent_id>/issue-switch-command",
        "api/agents/<str:agent_id>/heartbeat",
        "api/agents/<str:agent_id>",
        "api/client/<str:client_id>/webhooks",
        "api/client/<str:client_id>/webhooks/<str:webhook_id>",
        "api/client/<str:client_id>/webhooks/<str:webhook_id>/rotate-secret",
        "api/client/<str:client_id>/webhooks/<str:webhook_id>/test",
        "api/client/<str:client_id>/webhooks/<str:webhook_id>/deliveries",
        "api/client/<str:client_id>/webhooks/<str:webhook_id>/deliveries/<str:delivery_id>/redeliver",
        "api/client/<str:client_id>/tokens",
        "api/client/<str:client_id>/tokens/<str:token_id>",
        "api/client/<str:client_id>/tokens/<str:token_id>/rotate",
        "api/client/<str:client_id>/audit",
        "api/client/<str:client_id>/events",
    ):
        assert expected in walked


@pytest.mark.parametrize("route, method", cases())
def test_another_clients_token_reaches_nothing(route, method, victim, client_obj, other_api):
    path = "/" + route
    for name in path_params(route):
        path = path.replace(f"<str:{name}>", victim[name]).replace(f"<{name}>", victim[name])
    before = db_state(client_obj)

    response = getattr(other_api, method)(path, body_for(route, victim), format="json")

    assert response.status_code in (403, 404), (method, path, response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    assert response.json().get("success") is False
    assert db_state(client_obj) == before, f"{method.upper()} {path} changed the database"


@pytest.mark.parametrize("route, method", cases())
def test_the_owner_is_not_refused(route, method, victim, api):
    """Control for the test above: with the owner's token the same call is not a 403/404 (so the
    refusal above comes from tenancy, not from a broken path)."""
    path = "/" + route
    for name in path_params(route):
        path = path.replace(f"<str:{name}>", victim[name]).replace(f"<{name}>", victim[name])
    response = getattr(api, method)(path, body_for(route, victim), format="json")
    assert response.status_code not in (403, 404), (method, path, response.status_code, response.content[:300])
