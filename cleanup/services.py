"""Cleanup reports from the agents (docs/API.md §1.10): one cleanup_logs row per reported section."""
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from agents.locks import agent_lock
from agents.models import Agent
from cleanup.models import CleanupLog, CleanupType
from spotbackend.payloads import json_capped, text_capped

@dataclass
class CleanupSection:
    cleanup_type: str
    details: dict
    cutoff_date: datetime | None = None
    error: str = ""
    # Lists of deleted resources by key (snapshots: `deleted`; AMIs: `deleted_amis`, `deleted_snapshots`).
    deleted: dict[str, list] = field(default_factory=dict)
    failed: list = field(default_factory=list)

    @property
    def deleted_count(self) -> int:
        return sum(len(v) for v in self.deleted.values())

    @property
    def failed_count(self) -> int:
        return len(self.failed)


@transaction.atomic
def cleanup_report_record(*, agent: Agent, executed_at: datetime | None, sections: list[CleanupSection],
                          now: datetime | None = None) -> list[CleanupLog]:
    """Store each section once: a resent report (same agent, type and timestamp) updates its rows, never adds."""
    now = now or timezone.now()
    executed_at = executed_at or now
    agent = agent_lock(agent_id=agent.pk)
    logs = []
    for section in sections:
        log, _ = CleanupLog.objects.update_or_create(
            agent=agent,
            cleanup_type=section.cleanup_type,
            executed_at=executed_at,
            defaults={
                "client_id": agent.client_id,
                "deleted_count": section.deleted_count,
                "failed_count": section.failed_count,
                "cutoff_date": section.cutoff_date,
                "error": text_capped(section.error),
                "details": json_capped(section.details),
            },
        )
        logs.append(log)
    if agent.last_cleanup_at is None or agent.last_cleanup_at < executed_at:
        agent.last_cleanup_at = executed_at
        agent.save(update_fields=["last_cleanup_at", "updated_at"])
    return logs


__all__ = ["CleanupSection", "CleanupType", "cleanup_report_record"]
