"""The back-office made for staff (issue 11, item 4): the admin site with the fleet at a glance on its
index, the read-only base for history models, the server-rendered savings chart and the agent timeline.
Reads come straight from the models; every change still goes through the services."""
from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

CHART_DAYS = 90
TIMELINE_LIMIT = 50


class SpotAdminSite(admin.AdminSite):
    site_header = "Spot optimizer back-office"
    site_title = "Spot optimizer admin"
    index_title = "Fleet and administration"
    index_template = "admin/spot_index.html"

    def index(self, request, extra_context=None):
        return super().index(request, {"fleet": fleet_at_a_glance(), **(extra_context or {})})


class SpotAdminConfig(AdminConfig):
    """`django.contrib.admin` with SpotAdminSite as the default site: same URLs, same registrations."""

    default_site = "backoffice.admin_views.SpotAdminSite"


class HistoryAdmin(admin.ModelAdmin):
    """History that must not be invented or rewritten: no Add, no edit, no delete. The change page is
    a read-only view. A list action that changes state (through a service) only needs the list-level
    change permission, so that is granted when the admin has actions, never for one object."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return obj is None and bool(self.actions) and super().has_change_permission(request)


class HistoryInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# ---- fleet at a glance (the admin index) -------------------------------------------------------


def _changelist(model_label: str, **params) -> str:
    from urllib.parse import urlencode

    app, model = model_label.split(".")
    url = reverse(f"admin:{app}_{model}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def fleet_at_a_glance(*, now=None) -> dict:
    from agents.models import Agent, AgentStatus, RiskRecommendation, SpotPool, TerminationEvent, TerminationEventStatus
    from agents.states import EVENT_FINAL as FINAL_EVENT_STATUSES
    from agents.services.status import agent_effective_status
    from notifications.models import Notification, NotificationStatus

    now = now or timezone.now()
    # One rule for "offline": the same effective status every reader sees (agents/services/status.py).
    statuses = Counter(
        agent_effective_status(agent=a, now=now)
        for a in Agent.objects.only("id", "status", "last_heartbeat_at").iterator(chunk_size=2000)
    )
    agents = [
        {"label": label, "count": statuses.get(value, 0), "url": _changelist("agents.agent", effective_status=value)}
        for value, label in AgentStatus.choices
    ]
    risk = Counter(SpotPool.objects.values_list("risk_recommendation", flat=True))
    pools = [
        {"label": label, "key": value, "count": risk.get(value, 0),
         "url": _changelist("agents.spotpool", risk_recommendation__exact=value)}
        for value, label in RiskRecommendation.choices
    ]
    pools.append({"label": "Not rated yet", "key": "unrated", "count": risk.get("", 0),
                  "url": _changelist("agents.spotpool", risk_recommendation__exact="")})
    open_events = TerminationEvent.objects.exclude(status__in=FINAL_EVENT_STATUSES).count()
    failed = Notification.objects.filter(status=NotificationStatus.FAILED).count()
    return {
        "agents": agents,
        "agents_total": sum(statuses.values()),
        "online": statuses.get(AgentStatus.ONLINE, 0),
        "offline": statuses.get(AgentStatus.OFFLINE, 0),
        "terminating": statuses.get(AgentStatus.TERMINATING, 0),
        "open_events": open_events,
        "open_events_url": _changelist("agents.terminationevent", status__in=",".join(
            value for value, _ in TerminationEventStatus.choices if value not in FINAL_EVENT_STATUSES)),
        "pools": pools,
        "failed_notifications": failed,
        "failed_notifications_url": _changelist("notifications.notification", status__exact="failed"),
    }


# ---- the client's daily savings chart ----------------------------------------------------------


def _money(value) -> str:
    return f"${Decimal(value or 0):,.2f}"


def savings_chart_html(*, client, today: date | None = None, days: int = CHART_DAYS) -> str:
    """An inline SVG bar chart of the client's daily savings over the last `days` days (one bar per
    day with a snapshot), with totals: no script, no external file, so it works offline."""
    from savings.models import SavingsSnapshot

    today = today or timezone.now().date()
    start = today - timedelta(days=days - 1)
    rows = list(
        SavingsSnapshot.objects.filter(client=client, snapshot_date__gte=start, snapshot_date__lte=today)
        .order_by("snapshot_date")
        .values("snapshot_date", "total_savings", "actual_cost", "ondemand_cost", "switch_count")
    )
    total = sum((r["total_savings"] for r in rows), Decimal(0))
    actual = sum((r["actual_cost"] for r in rows), Decimal(0))
    ondemand = sum((r["ondemand_cost"] for r in rows), Decimal(0))
    switches = sum(r["switch_count"] for r in rows)
    percent = (total / ondemand * 100) if ondemand else Decimal(0)
    totals = format_html(
        '<p class="savings-totals">Last {} days ({} to {}): saved <strong>{}</strong> '
        "({}% of {} on-demand; paid {}), {} switch(es), {} day(s) with data.</p>",
        days, start.isoformat(), today.isoformat(), _money(total), f"{percent:.1f}", _money(ondemand),
        _money(actual), switches, len(rows),
    )
    if not rows:
        return format_html('{}<p class="savings-chart-empty">No savings snapshots in this period.</p>', totals)

    bar_w, gap, height, left, top, bottom = 8, 2, 160, 64, 10, 22
    width = left + days * (bar_w + gap) + 10
    values = [r["total_savings"] for r in rows]
    hi, lo = max(max(values), Decimal(0)), min(min(values), Decimal(0))
    span = (hi - lo) or Decimal(1)

    def y(v: Decimal) -> float:
        return top + float((hi - v) / span) * height

    zero = y(Decimal(0))
    bars = []
    for r in rows:
        v = r["total_savings"]
        x = left + (r["snapshot_date"] - start).days * (bar_w + gap)
        y0, y1 = sorted((zero, y(v)))
        bars.append((
            "bar negative" if v < 0 else "bar", r["snapshot_date"].isoformat(), x, f"{y0:.1f}", bar_w,
            f"{max(y1 - y0, 1):.1f}", "#ba2121" if v < 0 else "#417690",
            r["snapshot_date"].isoformat(), _money(v),
        ))
    svg = format_html(
        '<svg class="savings-chart" xmlns="http://www.w3.org/2000/svg" width="100%" '
        'style="max-width:{w}px;height:auto;display:block" viewBox="0 0 {w} {h}" role="img" '
        'aria-label="Daily savings, last {d} days">'
        '<line x1="{l}" y1="{z}" x2="{r}" y2="{z}" stroke="#999" stroke-width="1"/>'
        '<text x="{tx}" y="{ty_hi}" font-size="10" text-anchor="end">{hi}</text>'
        '<text x="{tx}" y="{ty_z}" font-size="10" text-anchor="end">{zero_label}</text>'
        "{lo_label}{bars}"
        '<text x="{l}" y="{ty_axis}" font-size="10">{start}</text>'
        '<text x="{r}" y="{ty_axis}" font-size="10" text-anchor="end">{end}</text>'
        "</svg>",
        w=width, h=top + height + bottom, d=days, l=left, r=width - 10, z=f"{zero:.1f}", tx=left - 4,
        ty_hi=top + 8, ty_z=f"{zero + 3:.1f}", hi=_money(hi), zero_label="$0",
        # The lowest value only when below zero and far enough from the zero line to be read.
        lo_label=format_html('<text x="{}" y="{}" font-size="10" text-anchor="end">{}</text>', left - 4,
                             top + height, _money(lo)) if lo < 0 and top + height - zero > 12 else "",
        ty_axis=top + height + 16, start=start.isoformat(), end=today.isoformat(),
        bars=format_html_join(
            "",
            '<rect class="{}" data-date="{}" x="{}" y="{}" width="{}" height="{}" fill="{}">'
            "<title>{}: {}</title></rect>",
            bars,
        ),
    )
    return format_html("{}{}", totals, svg)


# ---- the agent's recent timeline ---------------------------------------------------------------


def agent_timeline(*, agent, limit: int = TIMELINE_LIMIT) -> list[dict]:
    """Switches, termination notices, commands and decisions of one agent, newest first, at most `limit`."""
    from agents.models import Command, Decision, Switch, TerminationEvent

    entries = []
    for s in Switch.objects.filter(agent=agent).order_by("-initiated_at")[:limit]:
        entries.append({
            "at": s.initiated_at, "kind": "switch", "url": reverse("admin:agents_switch_change", args=[s.pk]),
            "text": f"{s.old_mode} {s.old_instance_id or '?'} -> {s.new_mode} {s.new_instance_id or '?'} "
                    f"({s.trigger_type}, {s.savings_impact} USD/h)",
        })
    for e in TerminationEvent.objects.filter(agent=agent).order_by("-detected_at")[:limit]:
        entries.append({
            "at": e.detected_at, "kind": e.get_event_type_display().lower(),
            "url": reverse("admin:agents_terminationevent_change", args=[e.pk]),
            "text": f"{e.instance_id}: {e.status}" + (f", {e.action_taken}" if e.action_taken else "")
                    + (f" (seen {e.notice_count} times)" if e.notice_count > 1 else ""),
        })
    for c in Command.objects.filter(agent=agent).order_by("-created_at")[:limit]:
        entries.append({
            "at": c.created_at, "kind": "command", "url": reverse("admin:agents_command_change", args=[c.pk]),
            "text": f"to {c.target_mode}" + (f" in {c.target_pool_id}" if c.target_pool_id else "")
                    + f" from {c.source}: {c.status}" + (f", {c.message}" if c.message else ""),
        })
    for d in Decision.objects.filter(agent=agent).order_by("-created_at")[:limit]:
        entries.append({
            "at": d.created_at, "kind": "decision", "url": reverse("admin:agents_decision_change", args=[d.pk]),
            "text": d.summary + (f": {d.reason}" if d.reason else ""),
        })
    entries.sort(key=lambda e: e["at"], reverse=True)
    return entries[:limit]


def agent_timeline_html(*, agent, limit: int = TIMELINE_LIMIT) -> str:
    entries = agent_timeline(agent=agent, limit=limit)
    if not entries:
        return format_html('<p class="agent-timeline-empty">{}</p>', "Nothing yet.")
    rows = format_html_join(
        "",
        '<tr class="timeline-{}"><td>{}</td><td>{}</td><td><a href="{}">{}</a></td></tr>',
        (
            (e["kind"].replace(" ", "-"), timezone.localtime(e["at"]).strftime("%Y-%m-%d %H:%M:%S"), e["kind"],
             e["url"], e["text"])
            for e in entries
        ),
    )
    return format_html(
        '<table class="agent-timeline"><thead><tr><th>When</th><th>What</th><th>Detail</th></tr></thead>'
        "<tbody>{}</tbody></table><p class=\"help\">Newest first, at most {}.</p>",
        rows, limit,
    )


__all__ = [
    "HistoryAdmin", "HistoryInline", "SpotAdminConfig", "SpotAdminSite", "agent_timeline", "agent_timeline_html",
    "fleet_at_a_glance", "savings_chart_html",
]
