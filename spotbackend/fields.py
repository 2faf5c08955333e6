"""Input fields that refuse the wrong JSON type instead of coercing it (docs/API.md §0: name the field)."""
import decimal

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be a boolean."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class PriceField(serializers.DecimalField):
    """A price in USD/h as the agent sends it: a JSON number, up to 6 decimals kept."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 12)
        kwargs.setdefault("decimal_places", 6)
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("coerce_to_string", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float, str)):
            self.fail("invalid")
        if isinstance(data, float):
            data = repr(data)
        return super().to_internal_value(data)

    def quantize(self, value):
        # 999999.9999999 rounds to 1000000.000000, one digit too many: a 400 naming the field, not a 500.
        try:
            return super().quantize(value)
        except decimal.InvalidOperation:
            self.fail("max_digits", max_digits=self.max_digits)

    def validate_precision(self, value):
        # Round extra decimals (0.01234567 is kept as 0.012346) instead of refusing the report.
        if abs(value) >= 10**6:
            self.fail("max_digits", max_digits=self.max_digits)
        return value
