"""Input serializers for the agents' calls: they parse and type-check; decisions live in services.
What the answers look like: agents/api/outputs.py."""
from rest_framework import serializers

from spotbackend.fields import PriceField, StrictBooleanField, StrictCharField
from spotbackend.payloads import text_capped


def _opt_str(**kwargs):
    return StrictCharField(required=False, allow_null=True, allow_blank=True, **kwargs)


def _id(**kwargs):
    """An identifier (logical agent id, instance id, pool id, command id): kept byte for byte, never
    trimmed; the database compares it exactly too (agents/migrations/0002_identifiers_exact_collation.py)."""
    return StrictCharField(trim_whitespace=False, **kwargs)


def _opt_id(**kwargs):
    return _id(required=False, allow_null=True, allow_blank=True, **kwargs)


class RegisterInput(serializers.Serializer):
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


class HeartbeatInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=REPORTED_STATUSES, required=False, allow_null=True)
    monitored_instances = serializers.ListField(required=False, allow_null=True)
    instance_id = _opt_id(max_length=64)
    instance_type = _opt_str(max_length=64)
    mode = _opt_str(max_length=16)
    az = _opt_str(max_length=32)


class ExecutedInput(serializers.Serializer):
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
