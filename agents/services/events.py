from agents.models import Agent, Severity, SystemEvent


def system_event_log(
    *,
    event_type: str,
    message: str,
    severity: str = Severity.INFO,
    agent: Agent | None = None,
    client=None,
    metadata: dict | None = None,
) -> SystemEvent:
    return SystemEvent.objects.create(
        event_type=event_type,
        message=message,
        severity=severity,
        agent=agent,
        # The agent's client by id: agent.client would load the row for nothing.
        client_id=client.pk if client is not None else (agent.client_id if agent is not None else None),
        metadata=metadata or {},
    )
