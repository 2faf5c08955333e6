"""The cleanup report as the agent sends it (docs/API.md §1.10); decisions live in cleanup.services."""
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cleanup.models import CleanupType
from spotbackend.fields import StrictCharField


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "object", "additionalProperties": True}]})
class FailedItemField(serializers.Field):
    """A failed item: a resource id, or an object such as {"id": "snap-9", "error": "..."}."""

    default_error_messages = {"invalid": "Must be a string or an object."}

    def to_internal_value(self, data):
        if not isinstance(data, (str, dict)):
            self.fail("invalid")
        return data


class CleanupSectionInput(serializers.Serializer):
    type = serializers.ChoiceField(choices=CleanupType.choices, required=False)
    deleted = serializers.ListField(child=StrictCharField(allow_blank=True), required=False, default=list)
    deleted_amis = serializers.ListField(child=StrictCharField(allow_blank=True), required=False, default=list)
    deleted_snapshots = serializers.ListField(child=StrictCharField(allow_blank=True), required=False, default=list)
    failed = serializers.ListField(child=FailedItemField(), required=False, default=list)
    cutoff_date = serializers.DateTimeField(required=False, allow_null=True, default=None)
    error = StrictCharField(required=False, allow_null=True, allow_blank=True, default="")


class CleanupReportInput(serializers.Serializer):
    timestamp = serializers.DateTimeField(required=False, allow_null=True, default=None)
    snapshots = CleanupSectionInput(required=False, allow_null=True)
    amis = CleanupSectionInput(required=False, allow_null=True)
    full = CleanupSectionInput(required=False, allow_null=True)
