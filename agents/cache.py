"""What the agent's hot path caches, and when each entry is invalidated: one place.

- agent id -> owner client id, in each process (an agent belongs to one client forever);
- the agent's own part of its `config`, in Redis, invalidated whenever the agent row is saved;
- "this agent has no pending command", in Redis, invalidated whenever a command is issued.
Redis entries are filled with a compare-and-set and have a TTL, so a lost invalidation (Redis
unreachable at that moment) is bounded by the TTL. See docs/PERFORMANCE.md ("The hot path").
"""
import json
import threading
import uuid

from django.conf import settings

from spotbackend.hotcache import hot_fill, hot_get, hot_invalidate, hot_invalidate_on_commit, hot_value

MAX_OWNERS = 200_000
NO_COMMAND = "none"

_owners: dict[uuid.UUID, uuid.UUID] = {}
_owners_lock = threading.Lock()


def agent_owner_get(*, agent_pk: uuid.UUID):
    """The client id that owns this agent, or None (unknown agent). One query on the first call."""
    owner = _owners.get(agent_pk)
    if owner is None:
        from agents.models import Agent

        owner = Agent.objects.filter(pk=agent_pk).values_list("client_id", flat=True).first()
        if owner is not None:
            with _owners_lock:
                if len(_owners) >= MAX_OWNERS:
                    _owners.clear()
                _owners[agent_pk] = owner
    return owner


def agent_owner_forget(*, agent_pk: uuid.UUID) -> None:
    _owners.pop(agent_pk, None)


def _config_key(agent_pk) -> str:
    return f"sb:agent:{agent_pk}:config"


def _command_key(agent_pk) -> str:
    return f"sb:agent:{agent_pk}:nocmd"


# --- config -------------------------------------------------------------------------------------

def agent_config_cached(*, agent_pk) -> tuple[dict | None, str | None]:
    """(the cached settings part of the agent's config, or None; what the key held, for the fill)."""
    raw = hot_get(_config_key(agent_pk))
    value = hot_value(raw)
    return (json.loads(value) if value else None), raw


def agent_config_fill(*, agent_pk, seen: str | None, values: dict) -> None:
    hot_fill(_config_key(agent_pk), seen=seen, value=json.dumps(values), ttl=settings.AGENT_CONFIG_CACHE_TTL)


# --- open commands ------------------------------------------------------------------------------

def agent_has_no_command_cached(*, agent_pk) -> tuple[bool, str | None]:
    """(True if the agent is known to have no pending command, what the key held)."""
    raw = hot_get(_command_key(agent_pk))
    return hot_value(raw) == NO_COMMAND, raw


def agent_no_command_fill(*, agent_pk, seen: str | None) -> None:
    hot_fill(_command_key(agent_pk), seen=seen, value=NO_COMMAND, ttl=settings.AGENT_NO_COMMAND_CACHE_TTL)


def agent_commands_changed(*, agent_pk) -> None:
    """A command was issued for the agent: its next poll must read the database."""
    hot_invalidate_on_commit(_command_key(agent_pk))


# --- invalidation -------------------------------------------------------------------------------

def agent_row_changed(*, agent_pk) -> None:
    """The agent row was saved (settings, status, instance...): its config is read again."""
    hot_invalidate_on_commit(_config_key(agent_pk))


def agent_deleted(*, agent_pk) -> None:
    agent_owner_forget(agent_pk=agent_pk)
    hot_invalidate_on_commit(_config_key(agent_pk), _command_key(agent_pk))


def agent_cache_clear_local() -> None:
    """Forget this process's owner map (tests)."""
    _owners.clear()


def agent_cache_invalidate_now(*, agent_pk) -> None:
    hot_invalidate(_config_key(agent_pk), _command_key(agent_pk))
