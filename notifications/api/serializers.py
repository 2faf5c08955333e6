"""Input and output of the client's webhook routes (docs/API.md "Webhooks")."""
from rest_framework import serializers

from notifications.models import EventType, WebhookFormat
from spotbackend.api import IdField


class WebhookCreateInput(serializers.Serializer):
    url = serializers.URLField(max_length=2000)
    events = serializers.ListField(child=serializers.ChoiceField(choices=EventType.choices), max_length=20,
                                   allow_empty=True)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    format = serializers.ChoiceField(choices=WebhookFormat.choices, required=False, default=WebhookFormat.STANDARD)
    enabled = serializers.BooleanField(required=False, default=True)


class WebhookUpdateInput(serializers.Serializer):
    url = serializers.URLField(max_length=2000, required=False)
    events = serializers.ListField(child=serializers.ChoiceField(choices=EventType.choices), max_length=20,
                                   allow_empty=True, required=False)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    format = serializers.ChoiceField(choices=WebhookFormat.choices, required=False)
    enabled = serializers.BooleanField(required=False)


class WebhookSerializer(serializers.Serializer):
    id = IdField(source="pk")
    url = serializers.CharField()
    description = serializers.CharField()
    events = serializers.ListField(child=serializers.ChoiceField(choices=EventType.choices))
    format = serializers.ChoiceField(choices=WebhookFormat.choices)
    enabled = serializers.BooleanField()
    secret_prefix = serializers.SerializerMethodField(help_text="The secret's first characters (the secret is "
                                                      "shown only at creation and rotation).")
    disabled_reason = serializers.CharField(help_text="Why the server disabled it (410, a day of failures).")
    disabled_at = serializers.DateTimeField(allow_null=True)
    failing_since = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_secret_prefix(self, obj) -> str:
        return obj.secret[:10]


class WebhookWithSecretOutput(WebhookSerializer):
    secret = serializers.CharField(help_text="whsec_...: shown this once; sign-check deliveries with it.")
    previous_secret_expires_at = serializers.DateTimeField(
        allow_null=True, help_text="After a rotation, deliveries carry both signatures until then.")


class WebhookListOutput(serializers.Serializer):
    webhooks = WebhookSerializer(many=True)


class DeliverySerializer(serializers.Serializer):
    id = IdField(source="pk")
    event_id = serializers.CharField()
    event_type = serializers.CharField(source="kind")
    status = serializers.ChoiceField(choices=["pending", "sent", "failed"])
    attempts = serializers.IntegerField()
    response_code = serializers.IntegerField(source="last_status_code", allow_null=True)
    last_error = serializers.CharField()
    created_at = serializers.DateTimeField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    sent_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)


class DeliveryPageOutput(serializers.Serializer):
    deliveries = DeliverySerializer(many=True)
    total = serializers.IntegerField()
