"""What a reader sees of an agent's status. The moves themselves are in agents/states.py."""
from datetime import datetime

from agents.models import Agent, AgentStatus


def agent_effective_status(*, agent: Agent, now: datetime | None = None) -> str:
    """The stored status, or `offline` as soon as the agent is not alive (Agent.is_alive), before any
    sweep runs."""
    return agent.status if agent.is_alive(now=now) else AgentStatus.OFFLINE
