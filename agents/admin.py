from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.utils import timezone

from agents.models import (
    Agent,
    AgentStatus,
    Command,
    Decision,
    Instance,
    OnDemandPriceSample,
    PoolRiskAnalysis,
    Replica,
    ReplicaStatus,
    Severity,
    SpotPool,
    SpotPriceSample,
    Switch,
    SystemEvent,
    TerminationEvent,
    TerminationEventStatus,
)
from agents.services.termination_events import termination_events_close
from agents.states import EVENT_FINAL as FINAL_EVENT_STATUSES, replica_can_change, replica_transition, termination_event_can_change
from spotbackend.exceptions import ConflictError, InvalidInput
from agents.services.agent_settings import SETTING_FIELDS, agent_enabled_toggle, agent_settings_update
from agents.services.registration import agents_delete
from agents.services.status import agent_effective_status
from backoffice.admin_views import HistoryAdmin, HistoryInline, agent_timeline_html


class InstanceInline(HistoryInline):
    model = Instance
    fields = ("instance_id", "state", "mode", "pool", "az", "started_at", "ended_at", "last_seen_at")
    readonly_fields = fields


class DecisionInline(HistoryInline):
    """The agent's automatic decisions and why (issue 9, item 8), newest first."""

    model = Decision
    fields = ("created_at", "kind", "action", "dry_run", "target_mode", "target_pool_id", "target_price",
              "target_risk", "reason")
    readonly_fields = fields
    ordering = ("-created_at",)
    verbose_name_plural = "decisions of the last 30 days (all: Decisions)"

    def get_queryset(self, request):
        # An agent page stays small however long the agent has lived.
        return super().get_queryset(request).filter(created_at__gte=timezone.now() - timedelta(days=30))


@admin.register(Decision)
class DecisionAdmin(HistoryAdmin):
    list_display = ("created_at", "agent", "client", "kind", "action", "dry_run", "target_pool_id", "target_mode")
    list_filter = ("kind", "dry_run", "client")
    search_fields = ("action", "reason", "instance_id", "target_pool_id", "agent__hostname", "agent__logical_agent_id")
    list_select_related = ("agent", "client")
    raw_id_fields = ("agent", "client", "termination_event", "replica", "command")
    date_hierarchy = "created_at"


class EffectiveStatusFilter(admin.SimpleListFilter):
    """The status a reader sees (offline once the heartbeat is too old), as counted on the admin index."""

    title = "status as seen"
    parameter_name = "effective_status"

    def lookups(self, request, model_admin):
        return AgentStatus.choices

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        now = timezone.now()
        ids = [a.pk for a in queryset.only("id", "status", "last_heartbeat_at")
               if agent_effective_status(agent=a, now=now) == self.value()]
        return queryset.filter(pk__in=ids)


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    """What the agent reports is shown, not edited; staff change its settings, and those go through
    the same services as the dashboard (mutual exclusivity, system events)."""

    list_display = (
        "hostname", "logical_agent_id", "client", "instance_id", "instance_type", "az", "current_mode",
        "status_as_seen", "enabled", "auto_switch_enabled", "last_heartbeat_at",
    )
    list_filter = (EffectiveStatusFilter, "status", "current_mode", "enabled", "auto_switch_enabled",
                   "manual_replica_enabled", "client")
    search_fields = ("hostname", "logical_agent_id", "instance_id", "id", "private_ip", "public_ip")
    list_select_related = ("client",)
    reported = ("id", "client", "logical_agent_id", "hostname", "instance_id", "instance_type", "region", "az",
                "ami_id", "private_ip", "public_ip", "agent_version", "current_mode", "current_pool", "status",
                "last_heartbeat_at", "last_termination_notice_at", "last_rebalance_recommendation_at",
                "emergency_replica_count", "last_cleanup_at", "registered_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("hostname", "logical_agent_id", "client", "status_as_seen", "status", "current_mode",
                           "instance_id", "last_heartbeat_at")}),
        ("Settings", {"fields": ("enabled",) + SETTING_FIELDS}),
        ("Recent timeline", {"fields": ("recent_timeline",)}),
        ("Reported by the agent", {"classes": ("collapse",), "fields": (
            "id", "instance_type", "region", "az", "ami_id", "private_ip", "public_ip", "agent_version",
            "current_pool", "last_termination_notice_at", "last_rebalance_recommendation_at",
            "emergency_replica_count", "last_cleanup_at", "registered_at", "updated_at")}),
    )
    readonly_fields = reported + ("status_as_seen", "recent_timeline")
    inlines = [InstanceInline, DecisionInline]

    def has_add_permission(self, request):
        return False  # agents register themselves (POST /api/agents/register)

    @admin.display(description="status as seen")
    def status_as_seen(self, obj):
        return agent_effective_status(agent=obj) if obj and obj.pk else "-"

    @admin.display(description="Newest first (switches, notices, commands, decisions)")
    def recent_timeline(self, obj):
        return agent_timeline_html(agent=obj) if obj and obj.pk else "-"

    def delete_model(self, request, obj):
        agents_delete(agent_ids=[obj.pk])

    def delete_queryset(self, request, queryset):
        agents_delete(agent_ids=queryset.values_list("pk", flat=True))

    def save_model(self, request, obj, form, change):
        changes = {f: form.cleaned_data[f] for f in SETTING_FIELDS if f in form.changed_data}
        try:
            if changes:
                agent_settings_update(agent=obj, changes=changes)
            if "enabled" in form.changed_data:
                agent_enabled_toggle(agent=obj)
        except InvalidInput as e:
            self.message_user(request, f"Settings not saved: {e}", messages.ERROR)


@admin.register(Instance)
class InstanceAdmin(HistoryAdmin):
    list_display = ("instance_id", "agent", "client", "state", "mode", "pool", "az", "started_at", "ended_at")
    list_filter = ("state", "mode", "client")
    search_fields = ("instance_id", "agent__hostname", "agent__logical_agent_id")
    list_select_related = ("agent", "client")
    raw_id_fields = ("agent", "client", "pool")
    date_hierarchy = "started_at"


@admin.register(SpotPool)
class SpotPoolAdmin(admin.ModelAdmin):
    list_display = ("id", "instance_type", "region", "az", "latest_price", "latest_price_at", "risk_score",
                    "risk_recommendation", "cooldown_until")
    list_filter = ("region", "risk_recommendation", "instance_type")
    search_fields = ("id", "instance_type", "az")


@admin.register(SpotPriceSample)
class SpotPriceSampleAdmin(HistoryAdmin):
    list_display = ("pool", "price", "observed_at")
    list_filter = ("pool__region",)
    search_fields = ("pool__id",)
    raw_id_fields = ("pool",)
    date_hierarchy = "observed_at"


@admin.register(OnDemandPriceSample)
class OnDemandPriceSampleAdmin(HistoryAdmin):
    list_display = ("instance_type", "region", "price", "is_fallback", "observed_at")
    list_filter = ("region", "is_fallback")
    search_fields = ("instance_type",)
    date_hierarchy = "observed_at"


@admin.register(Command)
class CommandAdmin(HistoryAdmin):
    list_display = ("id", "agent", "target_mode", "target_pool", "priority", "status", "source", "created_at",
                    "delivered_at", "completed_at")
    list_filter = ("status", "target_mode", "source")
    search_fields = ("id", "agent__hostname", "agent__logical_agent_id", "delivered_instance_id")
    list_select_related = ("agent",)
    raw_id_fields = ("agent", "target_pool")


@admin.register(Switch)
class SwitchAdmin(HistoryAdmin):
    list_display = ("id", "agent", "old_instance_id", "new_instance_id", "old_mode", "new_mode", "savings_impact",
                    "trigger_type", "initiated_at")
    list_filter = ("trigger_type", "old_mode", "new_mode", "client")
    search_fields = ("old_instance_id", "new_instance_id", "agent__hostname", "id")
    list_select_related = ("agent",)
    raw_id_fields = ("agent", "client", "command")
    date_hierarchy = "initiated_at"


class ReplicaAdminForm(forms.ModelForm):
    class Meta:
        model = Replica
        fields = "__all__"

    def clean_status(self):
        status = self.cleaned_data["status"]
        if self.instance.pk and not replica_can_change(current=self.instance.status, to=status):
            raise forms.ValidationError(f"A {self.instance.status} replica cannot become {status}.")
        return status


@admin.register(Replica)
class ReplicaAdmin(admin.ModelAdmin):
    form = ReplicaAdminForm
    list_display = ("id", "agent", "client", "instance_id", "replica_type", "pool", "status", "hourly_cost",
                    "created_at")
    list_filter = ("status", "replica_type", "client", ("created_at", admin.DateFieldListFilter))
    search_fields = ("id", "instance_id", "parent_instance_id", "agent__hostname", "agent__logical_agent_id")
    list_select_related = ("agent", "client", "pool")
    raw_id_fields = ("agent", "client", "pool", "termination_event")
    readonly_fields = ("id", "created_at", "updated_at")
    date_hierarchy = "created_at"
    actions = ["terminate_replicas"]

    @admin.action(description="Terminate selected replicas")
    def terminate_replicas(self, request, queryset):
        done = skipped = 0
        for replica in queryset:
            try:
                changed = replica_transition(replica=replica, to=ReplicaStatus.TERMINATED,
                                             reason=f"terminated by {request.user} in the admin")
            except ConflictError:
                changed = False
            done, skipped = (done + 1, skipped) if changed else (done, skipped + 1)
        self.message_user(request, f"{done} replica(s) terminated, {skipped} skipped (already final).")


class TerminationEventActionForm(ActionForm):
    action_taken = forms.CharField(required=False, max_length=100, label="Action taken",
                                   help_text="Recorded on every selected event.")


class TerminationEventAdminForm(forms.ModelForm):
    class Meta:
        model = TerminationEvent
        fields = "__all__"

    def clean(self):
        data = super().clean()
        status = data.get("status")
        if self.instance.pk and status and not termination_event_can_change(current=self.instance.status, to=status):
            self.add_error("status", f"A {self.instance.status} event cannot become {status}.")
        if status in FINAL_EVENT_STATUSES and not data.get("resolved_at"):
            data["resolved_at"] = timezone.now()
        return data


@admin.register(TerminationEvent)
class TerminationEventAdmin(admin.ModelAdmin):
    form = TerminationEventAdminForm
    action_form = TerminationEventActionForm
    list_display = ("id", "event_type", "agent", "client", "instance_id", "pool", "status", "action_taken",
                    "notice_count", "detected_at", "resolved_at")
    list_filter = ("event_type", "status", "client", ("detected_at", admin.DateFieldListFilter))
    search_fields = ("instance_id", "agent__hostname", "agent__logical_agent_id", "=agent__id")
    list_select_related = ("agent", "client", "pool")
    raw_id_fields = ("agent", "client", "pool", "emergency_replica")
    date_hierarchy = "detected_at"
    fields = ("event_type", "agent", "client", "instance_id", "pool", "notice_key", "termination_time",
              "detected_at", "last_seen_at", "notice_count", "emergency_replica", "status", "resolved_at",
              "action_taken", "metadata", "created_at")
    readonly_fields = ("event_type", "agent", "client", "instance_id", "pool", "notice_key", "termination_time",
                       "detected_at", "last_seen_at", "notice_count", "emergency_replica", "created_at")
    actions = ["mark_resolved", "mark_failed"]

    def _close(self, request, queryset, status: str) -> None:
        action_taken = (request.POST.get("action_taken") or "").strip()
        closed = termination_events_close(
            events=queryset, status=status, action_taken=action_taken or f"marked {status} by {request.user}"
        )
        skipped = queryset.count() - closed
        self.message_user(request, f"{closed} event(s) marked {status}" + (f", {skipped} already closed." if skipped else "."))

    @admin.action(description="Mark selected events resolved")
    def mark_resolved(self, request, queryset):
        self._close(request, queryset, TerminationEventStatus.RESOLVED)

    @admin.action(description="Mark selected events failed")
    def mark_failed(self, request, queryset):
        self._close(request, queryset, TerminationEventStatus.FAILED)


@admin.register(SystemEvent)
class SystemEventAdmin(HistoryAdmin):
    list_display = ("created_at", "severity", "event_type", "agent", "client", "message")
    list_filter = ("severity", "event_type", "client", ("created_at", admin.DateFieldListFilter))
    search_fields = ("message", "event_type", "agent__hostname", "agent__logical_agent_id")
    list_select_related = ("agent", "client")
    raw_id_fields = ("agent", "client")
    date_hierarchy = "created_at"
    # A log: staff may re-grade events from the list (the actions), never rewrite what happened.
    actions = ["mark_info", "mark_warning"]

    @admin.action(description="Set severity: info", permissions=["change"])
    def mark_info(self, request, queryset):
        self.message_user(request, f"{queryset.update(severity=Severity.INFO)} event(s) set to info.")

    @admin.action(description="Set severity: warning", permissions=["change"])
    def mark_warning(self, request, queryset):
        self.message_user(request, f"{queryset.update(severity=Severity.WARNING)} event(s) set to warning.")


@admin.register(PoolRiskAnalysis)
class PoolRiskAnalysisAdmin(HistoryAdmin):
    list_display = ("pool", "analyzed_at", "risk_score", "recommendation", "volatility", "avg_price_24h",
                    "interruption_frequency")
    list_filter = ("recommendation", "pool__region")
    search_fields = ("pool__id",)
    raw_id_fields = ("pool",)
    date_hierarchy = "analyzed_at"
