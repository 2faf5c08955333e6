"""Output serializers of the agents' routes and of the representations the dashboard shares with them:
one per representation, the same one wherever it is shown (docs/API.md). They render what the
selectors and services return (model instances, dataclasses, dicts of values)."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.models import AgentStatus, CommandStatus, DecisionKind, Mode, ReplicaStatus, ReplicaType
from agents.selectors import replica_hourly_cost
from spotbackend.api import IdField, MoneyField, NullableMoneyField, OmitEmptyMixin, SuccessField

NO_EVENT = "null when nothing was recorded (an instance never registered for this agent)."
RECORDED_AS = ["primary", "non_primary", "unknown_instance", "offline_ignored"]


class AgentConfigSerializer(serializers.Serializer):
    """The agent's config (docs/API.md §1.3): it reads `enabled`, always present."""

    agent_id = IdField()
    enabled = serializers.BooleanField()
    auto_switch_enabled = serializers.BooleanField()
    auto_terminate_enabled = serializers.BooleanField()
    manual_replica_enabled = serializers.BooleanField()
    replica_count = serializers.IntegerField()
    AUTO_CLEANUP_ENABLED = serializers.BooleanField()
    CLEANUP_SNAPSHOTS_DAYS = serializers.IntegerField()
    CLEANUP_AMIS_DAYS = serializers.IntegerField()


class RegisterOutput(serializers.Serializer):
    success = SuccessField()
    agent_id = IdField()
    client_id = IdField()
    created = serializers.BooleanField()
    is_primary = serializers.BooleanField()
    config = AgentConfigSerializer()


class HeartbeatOutput(serializers.Serializer):
    success = SuccessField()
    recorded_as = serializers.ChoiceField(choices=RECORDED_AS)


class AgentSummarySerializer(serializers.Serializer):
    """One agent as the dashboard shows it (docs/API.md §2): the agent list and GET /api/agents/{id}.
    `status` is the effective one (offline once the heartbeat is too old: agents.selectors.agent_with_status)."""

    id = IdField(source="pk")
    hostname = serializers.CharField()
    logical_agent_id = serializers.CharField()
    instance_id = serializers.CharField()
    instance_type = serializers.CharField()
    az = serializers.CharField()
    current_mode = serializers.ChoiceField(choices=Mode.choices)
    status = serializers.ChoiceField(source="effective_status", choices=AgentStatus.choices)
    last_heartbeat_at = serializers.DateTimeField(allow_null=True)
    enabled = serializers.BooleanField()
    auto_switch_enabled = serializers.BooleanField()
    auto_terminate_enabled = serializers.BooleanField()
    manual_replica_enabled = serializers.BooleanField()
    replica_count = serializers.IntegerField()



class CommandItemSerializer(serializers.Serializer):
    """A command as the agent receives it (docs/API.md §1.4)."""

    id = IdField(source="pk")
    target_mode = serializers.ChoiceField(choices=["spot", "ondemand"])
    target_pool_id = serializers.SerializerMethodField()
    priority = serializers.IntegerField()
    created_at = serializers.DateTimeField()

    def get_target_pool_id(self, command) -> str:
        return command.target_pool_id or ""


class PendingCommandsOutput(serializers.Serializer):
    commands = CommandItemSerializer(many=True)


class CommandExecutedOutput(serializers.Serializer):
    success = SuccessField()
    command_id = IdField(source="pk")
    status = serializers.ChoiceField(choices=CommandStatus.choices)


class IssueSwitchCommandOutput(serializers.Serializer):
    success = SuccessField()
    command_id = IdField(source="pk")
    target_mode = serializers.ChoiceField(choices=["spot", "ondemand"])
    target_pool_id = serializers.SerializerMethodField()
    priority = serializers.IntegerField()

    def get_target_pool_id(self, command) -> str:
        return command.target_pool_id or ""


class IgnoredQuoteSerializer(serializers.Serializer):
    pool_id = serializers.CharField()
    reason = serializers.CharField()


class PricingReportOutput(OmitEmptyMixin, serializers.Serializer):
    omit_empty = ("ignored",)
    success = SuccessField()
    pools = serializers.IntegerField(help_text="How many pool quotes were recorded.")
    ignored = IgnoredQuoteSerializer(
        many=True, required=False,
        help_text="Quotes dropped, each with its reason (agents/services/market.py); present only when any were.")


class SwitchReportOutput(serializers.Serializer):
    success = SuccessField()
    switch_id = IdField(source="pk")
    savings_impact = MoneyField(help_text="USD/h: old hourly price minus new hourly price.")


class TerminationDecisionOutput(OmitEmptyMixin, serializers.Serializer):
    """The answer to a termination notice (docs/API.md §1.8); a repeat gives the same decision."""

    omit_empty = ("replica_id", "command_id")
    success = SuccessField()
    create_emergency_replica = serializers.BooleanField()
    target_pool_id = serializers.CharField()
    target_mode = serializers.CharField()
    instructions = serializers.CharField()
    action = serializers.CharField()
    event_id = serializers.IntegerField(source="event.pk", allow_null=True, help_text=NO_EVENT)
    replica_id = serializers.CharField(required=False, help_text="Present when a replica was chosen.")
    command_id = serializers.CharField(required=False, help_text="Present when a switch command was queued.")


class RebalanceDecisionOutput(OmitEmptyMixin, serializers.Serializer):
    """The answer to a rebalance recommendation (docs/API.md §1.9)."""

    omit_empty = ("command_id",)
    success = SuccessField()
    action = serializers.ChoiceField(choices=["switch", "monitor"])
    target_mode = serializers.CharField()
    target_pool_id = serializers.CharField()
    reason = serializers.CharField()
    event_id = serializers.IntegerField(source="event.pk", allow_null=True, help_text=NO_EVENT)
    command_id = serializers.CharField(required=False, help_text="Present when a switch command was queued.")


class ReplicaBriefSerializer(serializers.Serializer):
    """A replica in the dashboard's replica list (docs/API.md §2)."""

    id = IdField(source="pk")
    agent_id = IdField()
    instance_id = serializers.CharField()
    replica_type = serializers.ChoiceField(choices=ReplicaType.choices)
    pool_id = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=ReplicaStatus.choices)
    hourly_cost = serializers.SerializerMethodField()

    def get_pool_id(self, replica) -> str:
        return replica.pool_id or ""

    @extend_schema_field(OpenApiTypes.DOUBLE)
    def get_hourly_cost(self, replica) -> float:
        """USD/h; an unknown cost is 0.0 (agents.selectors.replica_hourly_cost)."""
        cost = replica_hourly_cost(replica)
        return float(cost) if cost is not None else 0.0


class ReplicaSerializer(ReplicaBriefSerializer):
    """One replica in full (docs/API.md §1.11): the brief one plus its history."""

    parent_instance_id = serializers.CharField()
    termination_event_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    ready_at = serializers.DateTimeField(allow_null=True)
    promoted_at = serializers.DateTimeField(allow_null=True)
    terminated_at = serializers.DateTimeField(allow_null=True)


class ReplicaCreateOutput(serializers.Serializer):
    success = SuccessField()
    replica_id = IdField(source="replica.pk")
    created = serializers.BooleanField()
    replica = ReplicaSerializer()


class EmergencyReplicaOutput(serializers.Serializer):
    success = SuccessField()
    replica_id = IdField(source="replica.pk")
    instance_id = serializers.CharField(source="replica.instance_id")
    created = serializers.BooleanField()


class ReplicaStatusOutput(serializers.Serializer):
    success = SuccessField()
    replica_id = IdField(source="pk")
    status = serializers.ChoiceField(choices=ReplicaStatus.choices)


class PromoteOutput(OmitEmptyMixin, serializers.Serializer):
    """The answer to Promote (docs/API.md §1.12)."""

    omit_empty = ("command_id",)
    success = SuccessField()
    message = serializers.CharField()
    action = serializers.ChoiceField(choices=["promoted", "switch_queued"])
    replica_id = IdField(source="replica.pk")
    instance_id = serializers.CharField(source="replica.instance_id")
    status = serializers.ChoiceField(source="replica.status", choices=ReplicaStatus.choices)
    command_id = serializers.CharField(required=False, help_text="Present when a switch command was queued.")


class ReplicaConfigOutput(serializers.Serializer):
    """What a newer agent reads to manage its replicas (docs/API.md §1.12)."""

    agent_id = IdField(source="agent.pk")
    manual_replica_enabled = serializers.BooleanField(source="agent.manual_replica_enabled")
    replica_count = serializers.IntegerField(source="agent.replica_count")
    auto_switch_enabled = serializers.BooleanField(source="agent.auto_switch_enabled")
    emergency_replica_auto_create = serializers.BooleanField()
    emergency_replica_count = serializers.IntegerField(source="agent.emergency_replica_count")
    current_pool_id = serializers.SerializerMethodField()
    replicas = ReplicaSerializer(many=True)

    def get_current_pool_id(self, data) -> str:
        return data["agent"].current_pool_id or ""


class DecisionSerializer(serializers.Serializer):
    """One automatic decision as the dashboard lists it (issue 9, item 8)."""

    id = IdField(source="pk")
    agent_id = IdField()
    kind = serializers.ChoiceField(choices=DecisionKind.choices)
    action = serializers.CharField()
    dry_run = serializers.BooleanField()
    summary = serializers.CharField()
    reason = serializers.CharField()
    instance_id = serializers.CharField()
    from_pool_id = serializers.CharField()
    target_mode = serializers.CharField()
    target_pool_id = serializers.CharField()
    target_price = NullableMoneyField()
    target_risk = serializers.CharField()
    deadline = serializers.DateTimeField(allow_null=True)
    termination_event_id = serializers.IntegerField(allow_null=True)
    replica_id = IdField(allow_null=True)
    command_id = IdField(allow_null=True)
    created_at = serializers.DateTimeField()
