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
        client=client if client is not None else (agent.client if agent is not None else None),
        metadata=metadata or {},
    )
