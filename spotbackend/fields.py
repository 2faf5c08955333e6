"""Input fields that refuse the wrong JSON type instead of coercing it (docs/API.md §0: name the field)."""
import copy
import decimal

from rest_framework import serializers


class FlatSerializer(serializers.Serializer):
    """A serializer of plain fields (no nested serializers), cheap on the agent's hot path
    (docs/PERFORMANCE.md):

    - `fast_parse(data)` checks the ordinary valid body (ASCII strings within their limits, known
      choices, lists, booleans, times parsed by the declared DateTimeField itself) without building a
      serializer, and returns exactly what `validated_data` would be; anything else returns None and
      the caller runs the serializer, which names the problem;
    - its fields are shallow-copied per use instead of deep-copied."""

    _fast_plan = None

    def get_fields(self):
        fields = {}
        for name, field in self._declared_fields.items():
            field = copy.copy(field)
            if getattr(field, "child", None) is not None:
                field.child = copy.copy(field.child)
            fields[name] = field
        return fields

    @classmethod
    def _plan(cls):
        if cls.__dict__.get("_fast_plan") is None:
            plan = []
            hooks = cls.validate is not serializers.Serializer.validate or any(
                hasattr(cls, f"validate_{n}") for n in cls._declared_fields)
            for name, field in cls._declared_fields.items():
                if hooks or field.validators and type(field) not in (StrictCharField, serializers.CharField):
                    plan = False
                    break
                if isinstance(field, StrictCharField) or type(field) is serializers.CharField:
                    kind = ("str", field.max_length, field.allow_blank, field.trim_whitespace)
                elif type(field) is serializers.ChoiceField:
                    kind = ("choice", frozenset(c for c in field.choices if isinstance(c, str)))
                elif type(field) is serializers.ListField and type(field.child).__name__ == "_UnvalidatedField":
                    kind = ("list", field.allow_empty)
                elif isinstance(field, StrictBooleanField):
                    kind = ("bool",)
                elif type(field) is serializers.DateTimeField:
                    kind = ("time", field)  # parsed by the field itself: DRF's formats and time zone rules
                else:
                    plan = False
                    break
                default = field.default
                plan.append((name, kind, field.required, field.allow_null, default))
            cls._fast_plan = plan
        return cls._fast_plan

    @classmethod
    def fast_parse(cls, data) -> dict | None:
        plan = cls._plan()
        if not plan or not isinstance(data, dict):
            return None
        out = {}
        for name, kind, required, allow_null, default in plan:
            if name not in data:
                if required:
                    return None
                if default is not serializers.empty:
                    out[name] = default() if callable(default) else default
                continue
            value = data[name]
            if value is None:
                if not allow_null:
                    return None
                out[name] = None
                continue
            tag = kind[0]
            if tag == "str":
                _, max_length, allow_blank, trim = kind
                if (type(value) is not str or not value.isascii() or "\x00" in value
                        or (max_length is not None and len(value) > max_length)
                        or (trim and value != value.strip()) or (not value.strip() and not allow_blank)):
                    return None
            elif tag == "choice":
                if type(value) is not str or value not in kind[1]:
                    return None
            elif tag == "list":
                if type(value) is not list or (not value and not kind[1]):
                    return None
                value = list(value)
            elif tag == "time":
                try:
                    value = kind[1].to_internal_value(value)
                except serializers.ValidationError:
                    return None
            elif type(value) is not bool:
                return None
            out[name] = value
        return out


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
