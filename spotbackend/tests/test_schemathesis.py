"""Generated requests against the OpenAPI schema (issue 10, item 4): every operation, with valid and
invalid bodies, random and real ids, answers no 5xx, and every answer matches the schema (status code,
content type, body). In-process against the WSGI app; bounded examples and a fixed seed."""
import os

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from hypothesis.errors import Unsatisfiable

import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from agents.models import Command
from agents.tests.factories import AgentFactory, ReplicaFactory, SpotPoolFactory, SwitchFactory
from clients.services import client_token_create
from notifications.services import webhook_endpoint_create, webhook_endpoint_test
from spotbackend.wsgi import application

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Examples per operation and mode: ~25 s in the suite. SCHEMATHESIS_SCALE=10 for a deeper run by hand.
SCALE = int(os.environ.get("SCHEMATHESIS_SCALE", "1"))
EXAMPLES = {GenerationMode.POSITIVE: 12 * SCALE, GenerationMode.NEGATIVE: 6 * SCALE}


@pytest.fixture
def fleet(client_obj):
    """A client with a few agents, pools, a switch, replicas, a pending command, a webhook endpoint with a
    delivery and a named token: real ids to aim at."""
    pools = [SpotPoolFactory(az=f"us-east-1{z}", latest_price=p) for z, p in (("a", "0.0125"), ("b", "0.0131"))]
    agents = [AgentFactory(client=client_obj, current_pool=pools[0]) for _ in range(3)]
    SwitchFactory(agent=agents[0])
    replica = ReplicaFactory(agent=agents[0], pool=pools[1])
    ReplicaFactory(agent=agents[1], status="launching", instance_id="")
    command = Command.objects.create(agent=agents[2], target_mode="ondemand", priority=50)
    endpoint = webhook_endpoint_create(client=client_obj, url="https://hooks.example.com/fleet",
                                       events=["termination.notice", "agent.offline"])
    delivery = webhook_endpoint_test(endpoint=endpoint)
    token, _ = client_token_create(client=client_obj, name="fleet agents", scope="agent")
    return {
        "webhook_id": str(endpoint.pk),
        "delivery_id": str(delivery.pk),
        "token_id": str(token.pk),
        "agent_id": str(agents[0].pk),
        "client_id": str(client_obj.pk),
        "replica_id": str(replica.pk),
        "command_id": str(command.pk),
        "instance_id": agents[0].instance_id,
    }


def _run(operation, mode, headers, real_ids, failures):
    strategies = [operation.as_strategy(generation_mode=mode)]
    params = {p.name for p in operation.path_parameters}
    if params:
        strategies.append(
            operation.as_strategy(generation_mode=mode, path_parameters={n: real_ids[n] for n in params}))

    @settings(max_examples=EXAMPLES[mode], deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=st.one_of(strategies))
    def check(case):
        try:
            case.call_and_validate(headers=headers, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # collected, not shrunk: every failing operation is listed
            failures.setdefault(f"{operation.label} [{mode.value}]", str(exc)[:3000])

    try:
        check()
    except Unsatisfiable:  # nothing to make invalid (no parameters, no body): the positive run covers it
        assert mode is GenerationMode.NEGATIVE, operation.label


@pytest.fixture
def keep_connection():
    """The WSGI handler closes the database connection after each request; the test's transaction
    lives on it (Django's own test client does the same)."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def test_generated_requests_get_no_server_error_and_match_the_schema(fleet, client_obj, keep_connection):
    schema = schemathesis.openapi.from_wsgi("/api/schema", application)
    headers = {"Authorization": f"Bearer {client_obj.token}"}
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 31
    for operation in operations:
        for mode in EXAMPLES:
            _run(operation, mode, headers, fleet, failures)
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
