"""POST /api/agents/{agent_id}/cleanup-report: parse, call the service, answer."""
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from cleanup.api.serializers import CleanupReportInput
from cleanup.services import CleanupSection, cleanup_report_record
from agents.api.base import AgentApi
from spotbackend.api import BODY_ERRORS, SuccessMessageSerializer, answers, parse, render

SECTION_KEYS = ("snapshots", "amis", "full")


class CleanupReportApi(AgentApi):
    """The agent's hourly cleanup report (API.md §1.10)."""

    @extend_schema(request=CleanupReportInput, responses=answers(SuccessMessageSerializer, 404, *BODY_ERRORS))
    def post(self, request, agent_id):
        agent = self.get_agent(agent_id)
        data = parse(CleanupReportInput, request)
        sections = []
        for key in SECTION_KEYS:
            section = data.get(key)
            if not section:
                continue
            sections.append(
                CleanupSection(
                    cleanup_type=section.get("type") or key,
                    details=request.data[key],  # the section exactly as reported
                    cutoff_date=section.get("cutoff_date"),
                    error=section.get("error") or "",
                    deleted={k: section.get(k) or [] for k in ("deleted", "deleted_amis", "deleted_snapshots")},
                    failed=section.get("failed") or [],
                )
            )
        cleanup_report_record(agent=agent, executed_at=data.get("timestamp"), sections=sections)
        return Response(render(SuccessMessageSerializer, {"message": "Cleanup report recorded"}))
