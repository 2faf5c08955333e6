from django.contrib import admin

from agents.models import (
    Agent,
    Command,
    Instance,
    OnDemandPriceSample,
    PoolRiskAnalysis,
    Replica,
    SpotPool,
    SpotPriceSample,
    Switch,
    SystemEvent,
    TerminationEvent,
)


class InstanceInline(admin.TabularInline):
    model = Instance
    extra = 0
    fields = ("instance_id", "state", "mode", "pool", "az", "started_at", "ended_at", "last_seen_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = (
        "hostname", "logical_agent_id", "client", "instance_id", "instance_type", "az", "current_mode",
        "status", "enabled", "auto_switch_enabled", "last_heartbeat_at",
    )
    list_filter = ("status", "current_mode", "enabled", "auto_switch_enabled", "manual_replica_enabled", "client")
    search_fields = ("hostname", "logical_agent_id", "instance_id", "id", "private_ip", "public_ip")
    list_select_related = ("client",)
    readonly_fields = ("id", "registered_at", "updated_at")
    raw_id_fields = ("current_pool",)
    inlines = [InstanceInline]


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
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
class SpotPriceSampleAdmin(admin.ModelAdmin):
    list_display = ("pool", "price", "observed_at")
    list_filter = ("pool__region",)
    search_fields = ("pool__id",)
    raw_id_fields = ("pool",)
    date_hierarchy = "observed_at"


@admin.register(OnDemandPriceSample)
class OnDemandPriceSampleAdmin(admin.ModelAdmin):
    list_display = ("instance_type", "region", "price", "is_fallback", "observed_at")
    list_filter = ("region", "is_fallback")
    search_fields = ("instance_type",)
    date_hierarchy = "observed_at"


@admin.register(Command)
class CommandAdmin(admin.ModelAdmin):
    list_display = ("id", "agent", "target_mode", "target_pool", "priority", "status", "source", "created_at",
                    "delivered_at", "completed_at")
    list_filter = ("status", "target_mode", "source")
    search_fields = ("id", "agent__hostname", "agent__logical_agent_id", "delivered_instance_id")
    list_select_related = ("agent",)
    raw_id_fields = ("agent", "target_pool")
    readonly_fields = ("is_open",)


@admin.register(Switch)
class SwitchAdmin(admin.ModelAdmin):
    list_display = ("id", "agent", "old_instance_id", "new_instance_id", "old_mode", "new_mode", "savings_impact",
                    "trigger_type", "initiated_at")
    list_filter = ("trigger_type", "old_mode", "new_mode", "client")
    search_fields = ("old_instance_id", "new_instance_id", "agent__hostname", "id")
    list_select_related = ("agent",)
    raw_id_fields = ("agent", "client", "command")
    date_hierarchy = "initiated_at"


@admin.register(Replica)
class ReplicaAdmin(admin.ModelAdmin):
    list_display = ("id", "agent", "instance_id", "replica_type", "pool", "status", "hourly_cost", "created_at")
    list_filter = ("status", "replica_type", "client")
    search_fields = ("id", "instance_id", "parent_instance_id", "agent__hostname")
    list_select_related = ("agent",)
    raw_id_fields = ("agent", "client", "pool", "termination_event")


@admin.register(TerminationEvent)
class TerminationEventAdmin(admin.ModelAdmin):
    list_display = ("id", "event_type", "agent", "instance_id", "status", "action_taken", "detected_at",
                    "resolved_at")
    list_filter = ("event_type", "status", "client", "detected_at")
    search_fields = ("instance_id", "agent__hostname", "agent__logical_agent_id")
    list_select_related = ("agent",)
    raw_id_fields = ("agent", "client", "pool", "emergency_replica")
    date_hierarchy = "detected_at"


@admin.register(SystemEvent)
class SystemEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "severity", "event_type", "agent", "client", "message")
    list_filter = ("severity", "event_type", "client", "created_at")
    search_fields = ("message", "event_type", "agent__hostname")
    list_select_related = ("agent", "client")
    raw_id_fields = ("agent", "client")
    date_hierarchy = "created_at"


@admin.register(PoolRiskAnalysis)
class PoolRiskAnalysisAdmin(admin.ModelAdmin):
    list_display = ("pool", "analyzed_at", "risk_score", "recommendation", "volatility", "avg_price_24h",
                    "interruption_frequency")
    list_filter = ("recommendation", "pool__region")
    search_fields = ("pool__id",)
    raw_id_fields = ("pool",)
    date_hierarchy = "analyzed_at"
