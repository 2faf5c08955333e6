"""The agents' API serializers: input ones parse and type-check (decisions live in services); output
ones render what selectors and services return."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.models import AgentStatus, CommandStatus, DecisionKind, Mode, ReplicaStatus, ReplicaType
from agents.selectors import replica_hourly_cost
from spotbackend.api import IdField, MoneyField, NullableMoneyField, OmitEmptyMixin, SuccessField
from spotbackend.fields import FlatSerializer, PriceField, StrictBooleanField, StrictCharField
from spotbackend.payloads import text_capped


def _opt_str(**kwargs):
    return StrictCharField(required=False, allow_null=True, allow_blank=True, **kwargs)


def _id(**kwargs):
    """An identifier (logical agent id, instance id, pool id, command id): kept byte for byte, never
    trimmed; the database compares it exactly too (agents/migrations/0002_identifiers_exact_collation.py)."""
    return StrictCharField(trim_whitespace=False, **kwargs)


def _opt_id(**kwargs):
    return _id(required=False, allow_null=True, allow_blank=True, **kwargs)


class RegisterInput(FlatSerializer):
    client_token = _opt_str()
    hostname = _opt_str(max_length=255)
    instance_id = _id(max_length=64)
    instance_type = _opt_str(max_length=64)
    region = _opt_str(max_length=32)
    az = _opt_str(max_length=32)
    ami_id = _opt_str(max_length=64)
    agent_version = _opt_str(max_length=32)
    logical_agent_id = _opt_id(max_length=255)
    mode = _opt_str(max_length=16)
    private_ip = _opt_str(max_length=64)
    public_ip = _opt_str(max_length=64)


REPORTED_STATUSES = ["online", "disabled", "offline"]  # what an agent reports of itself


class HeartbeatInput(FlatSerializer):
    status = serializers.ChoiceField(choices=REPORTED_STATUSES, required=False, allow_null=True)
    monitored_instances = serializers.ListField(required=False, allow_null=True)
    instance_id = _opt_id(max_length=64)
    instance_type = _opt_str(max_length=64)
    mode = _opt_str(max_length=16)
    az = _opt_str(max_length=32)


class ExecutedInput(FlatSerializer):
    success = StrictBooleanField(required=False, default=True)
    message = StrictCharField(required=False, allow_blank=True, allow_null=True, default="")

    def validate_message(self, value):
        return text_capped(value)  # stored on the command; capped, not refused (the callback must land)


class MarkExecutedInput(ExecutedInput):
    command_id = _id()


class PoolQuoteInput(serializers.Serializer):
    pool_id = _id(max_length=100)
    instance_type = _opt_str(max_length=64)
    az = _opt_str(max_length=32)
    price = PriceField()


class PricingInstanceInput(serializers.Serializer):
    instance_id = _opt_id(max_length=64)
    instance_type = _opt_str(max_length=64)
    region = _opt_str(max_length=32)
    az = _opt_str(max_length=32)
    mode = _opt_str(max_length=16)
    pool_id = _opt_id(max_length=100)
    current_mode = _opt_str(max_length=16)  # v3.2.0
    current_pool_id = _opt_id(max_length=100)  # v3.2.0


class CheapestPoolInput(serializers.Serializer):
    pool_id = _opt_id()
    price = PriceField(required=False, allow_null=True)


class PricingV4Input(serializers.Serializer):
    on_demand_price = PriceField(required=False, allow_null=True)
    current_spot_price = PriceField(required=False, allow_null=True)
    cheapest_pool = CheapestPoolInput(required=False, allow_null=True)
    spot_pools = PoolQuoteInput(many=True, required=False)
    collected_at = serializers.DateTimeField(required=False, allow_null=True)


class OnDemandV3Input(serializers.Serializer):
    price = PriceField(required=False, allow_null=True)


class PricingReportInput(serializers.Serializer):
    instance = PricingInstanceInput()
    pricing = PricingV4Input(required=False)  # v4
    on_demand_price = OnDemandV3Input(required=False, allow_null=True)  # v3.2.0
    spot_pools = PoolQuoteInput(many=True, required=False)  # v3.2.0
    collected_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate(self, attrs):
        if "pricing" not in attrs and "spot_pools" not in attrs and "on_demand_price" not in attrs:
            raise serializers.ValidationError({"pricing": "This field is required."})
        return attrs


class SwitchSideInput(serializers.Serializer):
    instance_id = _opt_id(max_length=64)
    instance_type = _opt_str(max_length=64)
    region = _opt_str(max_length=32)
    az = _opt_str(max_length=32)
    ami_id = _opt_str(max_length=64)
    mode = _opt_str(max_length=16)
    pool_id = _opt_id(max_length=100)


class SwitchPricesInput(serializers.Serializer):
    on_demand = PriceField(required=False, allow_null=True)
    old_spot = PriceField(required=False, allow_null=True)
    new_spot = PriceField(required=False, allow_null=True)


class SwitchTimingInput(serializers.Serializer):
    switch_initiated_at = serializers.DateTimeField(required=False, allow_null=True)
    new_instance_ready_at = serializers.DateTimeField(required=False, allow_null=True)
    traffic_switched_at = serializers.DateTimeField(required=False, allow_null=True)
    old_instance_terminated_at = serializers.DateTimeField(required=False, allow_null=True)


class SwitchReportInput(serializers.Serializer):
    old_instance = SwitchSideInput()
    new_instance = SwitchSideInput()
    snapshot = serializers.DictField(required=False, allow_null=True)
    prices = SwitchPricesInput(required=False, allow_null=True)
    timing = SwitchTimingInput(required=False, allow_null=True)
    trigger = _opt_str(max_length=32)


# --- Output serializers: one per representation, the same one wherever it is shown (docs/API.md) ---
# They render what the selectors and services return (model instances, dataclasses, dicts of values).

NO_EVENT = "null when nothing was recorded (an instance never registered for this agent)."
RECORDED_AS = ["primary", "non_primary", "unknown_instance", "offline_ignored"]


class AgentConfigSerializer(FlatSerializer):
    """The agent's config (API.md §1.3): it reads `enabled`, always present."""

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


class HeartbeatOutput(FlatSerializer):
    success = SuccessField()
    recorded_as = serializers.ChoiceField(choices=RECORDED_AS)


class AgentSummarySerializer(serializers.Serializer):
    """One agent as the dashboard shows it (API.md §2): the agent list and GET /api/agents/{id}.
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



class CommandItemSerializer(FlatSerializer):
    """A command as the agent receives it (API.md §1.4)."""

    id = IdField(source="pk")
    target_mode = serializers.ChoiceField(choices=["spot", "ondemand"])
    target_pool_id = serializers.SerializerMethodField()
    priority = serializers.IntegerField()
    created_at = serializers.DateTimeField()

    def get_target_pool_id(self, command) -> str:
        return command.target_pool_id or ""


class PendingCommandsOutput(serializers.Serializer):
    commands = CommandItemSerializer(many=True)


class CommandExecutedOutput(FlatSerializer):
    success = SuccessField()
    command_id = IdField(source="pk")
    status = serializers.ChoiceField(choices=CommandStatus.choices)


class IssueSwitchCommandOutput(FlatSerializer):
    success = SuccessField()
    command_id = IdField(source="pk")
    target_mode = serializers.ChoiceField(choices=["spot", "ondemand"])
    target_pool_id = serializers.SerializerMethodField()
    priority = serializers.IntegerField()

    def get_target_pool_id(self, command) -> str:
        return command.target_pool_id or ""


class IgnoredQuoteSerializer(FlatSerializer):
    pool_id = serializers.CharField()
    reason = serializers.CharField()


class PricingReportOutput(OmitEmptyMixin, serializers.Serializer):
    omit_empty = ("ignored",)
    success = SuccessField()
    pools = serializers.IntegerField(help_text="How many pool quotes were recorded.")
    ignored = IgnoredQuoteSerializer(
        many=True, required=False,
        help_text="Quotes dropped, each with its reason (agents/services/market.py); present only when any were.")


class SwitchReportOutput(FlatSerializer):
    success = SuccessField()
    switch_id = IdField(source="pk")
    savings_impact = MoneyField(help_text="USD/h: old hourly price minus new hourly price.")


class TerminationDecisionOutput(OmitEmptyMixin, serializers.Serializer):
    """The answer to a termination notice (API.md §1.8); a repeat gives the same decision."""

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
    """The answer to a rebalance recommendation (API.md §1.9)."""

    omit_empty = ("command_id",)
    success = SuccessField()
    action = serializers.ChoiceField(choices=["switch", "monitor"])
    target_mode = serializers.CharField()
    target_pool_id = serializers.CharField()
    reason = serializers.CharField()
    event_id = serializers.IntegerField(source="event.pk", allow_null=True, help_text=NO_EVENT)
    command_id = serializers.CharField(required=False, help_text="Present when a switch command was queued.")


class ReplicaBriefSerializer(serializers.Serializer):
    """A replica in the dashboard's replica list (API.md §2)."""

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
    """One replica in full (API.md §1.11): the brief one plus its history."""

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


class EmergencyReplicaOutput(FlatSerializer):
    success = SuccessField()
    replica_id = IdField(source="replica.pk")
    instance_id = serializers.CharField(source="replica.instance_id")
    created = serializers.BooleanField()


class ReplicaStatusOutput(FlatSerializer):
    success = SuccessField()
    replica_id = IdField(source="pk")
    status = serializers.ChoiceField(choices=ReplicaStatus.choices)


class PromoteOutput(OmitEmptyMixin, serializers.Serializer):
    """The answer to Promote (API.md §1.12)."""

    omit_empty = ("command_id",)
    success = SuccessField()
    message = serializers.CharField()
    action = serializers.ChoiceField(choices=["promoted", "switch_queued"])
    replica_id = IdField(source="replica.pk")
    instance_id = serializers.CharField(source="replica.instance_id")
    status = serializers.ChoiceField(source="replica.status", choices=ReplicaStatus.choices)
    command_id = serializers.CharField(required=False, help_text="Present when a switch command was queued.")


class ReplicaConfigOutput(serializers.Serializer):
    """What a newer agent reads to manage its replicas (API.md §1.12)."""

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
