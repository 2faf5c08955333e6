"""Output serializers of the dashboard's reads (docs/API.md §2): they render what clients.selectors
returns. Representations shared with the agents' routes live in agents/api/outputs.py."""
from rest_framework import serializers

from agents.api.outputs import AgentSummarySerializer, DecisionSerializer, ReplicaBriefSerializer
from agents.models import AgentStatus, Mode
from agents.services.agent_settings import REPLICA_COUNT_MAX
from clients import selectors
from spotbackend.api import FloatOrZeroField, IdField, MoneyField, SuccessField
from spotbackend.fields import StrictBooleanField


class SettingsInput(serializers.Serializer):
    auto_switch_enabled = StrictBooleanField(required=False)
    auto_terminate_enabled = StrictBooleanField(required=False)
    manual_replica_enabled = StrictBooleanField(required=False)
    # The dashboard may send "2": IntegerField coerces numeric strings and refuses anything else.
    replica_count = serializers.IntegerField(required=False, min_value=0, max_value=REPLICA_COUNT_MAX)
    # A client-wide setting (issue 9): decide and record, tell the agents nothing.
    dry_run = StrictBooleanField(required=False)


class ValidateOutput(serializers.Serializer):
    valid = SuccessField()
    client_id = IdField(source="pk")
    name = serializers.CharField()
    email = serializers.CharField()


class SwitchBriefSerializer(serializers.Serializer):
    """A switch on the stats card (its latest switches)."""

    id = IdField(source="pk")
    old_instance_id = serializers.CharField()
    new_instance_id = serializers.CharField()
    old_mode = serializers.CharField()
    new_mode = serializers.CharField()
    savings_impact = MoneyField(help_text="USD/h: old hourly price minus new hourly price.")
    initiated_at = serializers.DateTimeField()


class SwitchSerializer(SwitchBriefSerializer):
    """A switch in the switch history: the brief one plus where and why."""

    agent_id = IdField()
    old_az = serializers.CharField()
    new_az = serializers.CharField()
    trigger_type = serializers.CharField(help_text='"manual", "model", ...')


class ActiveAgentSerializer(serializers.Serializer):
    """An agent that is not offline, on the stats card."""

    id = IdField(source="pk")
    status = serializers.ChoiceField(source="effective_status", choices=AgentStatus.choices)
    hostname = serializers.CharField()
    instance_id = serializers.CharField()
    instance_type = serializers.CharField()
    region = serializers.CharField()
    current_mode = serializers.ChoiceField(choices=Mode.choices)


class ClientStatsOutput(serializers.Serializer):
    total_agents = serializers.IntegerField()
    online_agents = serializers.IntegerField()
    active_instances = serializers.IntegerField()
    spot_instances = serializers.IntegerField()
    total_switches = serializers.IntegerField()
    switches_today = serializers.IntegerField()
    total_savings = MoneyField()
    monthly_savings = MoneyField()
    recent_switches = SwitchBriefSerializer(many=True)
    active_agents = ActiveAgentSerializer(many=True)


class AgentListOutput(serializers.Serializer):
    agents = AgentSummarySerializer(many=True)


class InstanceSerializer(serializers.Serializer):
    id = serializers.CharField(source="instance_id", help_text="The EC2 instance id.")
    instance_type = serializers.CharField()
    region = serializers.CharField()
    az = serializers.CharField()
    current_mode = serializers.ChoiceField(source="mode", choices=Mode.choices)
    spot_price = MoneyField()
    ondemand_price = MoneyField()
    is_active = serializers.BooleanField()


class InstanceListOutput(serializers.Serializer):
    instances = InstanceSerializer(many=True)


class PoolPriceSerializer(serializers.Serializer):
    pool_id = serializers.CharField()
    instance_type = serializers.CharField()
    az = serializers.CharField()
    price = MoneyField()
    price_at = serializers.DateTimeField(allow_null=True)
    is_fresh = serializers.BooleanField()
    risk_score = FloatOrZeroField()
    risk_recommendation = serializers.CharField(allow_null=True)
    in_cooldown = serializers.BooleanField()
    is_current = serializers.BooleanField()


class CheapestPoolSerializer(serializers.Serializer):
    pool_id = serializers.CharField()
    price = MoneyField()


class InstancePricingOutput(serializers.Serializer):
    instance_id = serializers.CharField()
    agent_id = IdField()
    instance_type = serializers.CharField()
    region = serializers.CharField()
    az = serializers.CharField()
    current_mode = serializers.ChoiceField(choices=Mode.choices)
    current_pool_id = serializers.CharField(allow_null=True)
    current_spot_price = MoneyField()
    ondemand_price = MoneyField()
    cheapest_pool = CheapestPoolSerializer(allow_null=True, help_text="null while no pool has a known price.")
    pools = PoolPriceSerializer(many=True)


PAGE_OFFSET_MAX = 10**9


class PageQuery(serializers.Serializer):
    """`limit` and `offset` of the paged lists (switches, decisions)."""

    limit = serializers.IntegerField(
        required=False, default=selectors.SWITCHES_LIMIT_DEFAULT, min_value=1, max_value=selectors.SWITCHES_LIMIT_MAX
    )
    # Bounded: the database refuses an OFFSET beyond 64 bits (found by spotbackend/tests/test_schemathesis.py).
    offset = serializers.IntegerField(required=False, default=0, min_value=0, max_value=PAGE_OFFSET_MAX)


class SwitchPageOutput(serializers.Serializer):
    switches = SwitchSerializer(many=True)
    total = serializers.IntegerField()


class DecisionPageOutput(serializers.Serializer):
    decisions = DecisionSerializer(many=True)
    total = serializers.IntegerField()


class ReplicaListOutput(serializers.Serializer):
    replicas = ReplicaBriefSerializer(many=True)


class ToggleEnabledOutput(serializers.Serializer):
    success = SuccessField()
    enabled = serializers.BooleanField()


class AgentSettingsSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    auto_switch_enabled = serializers.BooleanField()
    auto_terminate_enabled = serializers.BooleanField()
    manual_replica_enabled = serializers.BooleanField()
    replica_count = serializers.IntegerField(min_value=0, max_value=REPLICA_COUNT_MAX)
    dry_run = serializers.BooleanField()


class AgentSettingsOutput(serializers.Serializer):
    success = SuccessField()
    settings = AgentSettingsSerializer()


# --- Named tokens, audit trail, system events (issue 20) ---------------------------------------------


class TokenCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scope = serializers.ChoiceField(choices=["agent", "dashboard"])
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class TokenRotateInput(serializers.Serializer):
    overlap_seconds = serializers.IntegerField(
        required=False, min_value=0, max_value=30 * 86400, default=86400,
        help_text="How long the old token keeps working (default a day, at most 30 days).")


class TokenSerializer(serializers.Serializer):
    id = IdField(source="pk")
    name = serializers.CharField()
    scope = serializers.ChoiceField(choices=["agent", "dashboard"])
    token_prefix = serializers.CharField(help_text="The token's first characters, to tell tokens apart.")
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True, help_text="Updated at most once a minute.")
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class TokenCreatedOutput(TokenSerializer):
    token = serializers.CharField(source="plain", help_text="The token itself: shown this once, never again.")


class TokenRotatedOutput(serializers.Serializer):
    token = TokenCreatedOutput(source="new", help_text="The new token (shown this once).")
    previous = TokenSerializer(help_text="The old token, valid until its expires_at.")


class TokenListOutput(serializers.Serializer):
    tokens = TokenSerializer(many=True)


class AuditEntrySerializer(serializers.Serializer):
    id = IdField(source="pk")
    created_at = serializers.DateTimeField()
    token_id = IdField(allow_null=True, help_text="null: the client's original token, or a deleted one.")
    token_name = serializers.CharField()
    action = serializers.CharField()
    target = serializers.CharField()
    details = serializers.DictField()
    source_ip = serializers.CharField()


class AuditPageOutput(serializers.Serializer):
    entries = AuditEntrySerializer(many=True)
    total = serializers.IntegerField()


class SystemEventSerializer(serializers.Serializer):
    id = IdField(source="pk")
    created_at = serializers.DateTimeField()
    event_type = serializers.CharField()
    severity = serializers.CharField()
    message = serializers.CharField()
    agent_id = IdField(allow_null=True)


class SystemEventPageOutput(serializers.Serializer):
    events = SystemEventSerializer(many=True)
    total = serializers.IntegerField()


class DeletedOutput(serializers.Serializer):
    success = SuccessField()
    message = serializers.CharField()
