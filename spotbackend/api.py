"""The API toolkit every app's views share: parse a body, resolve an owned object or 404, and the
fields and serializers common to every answer (docs/API.md §0)."""
import functools
import uuid

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from spotbackend.exceptions import NotFoundError


def parse_uuid(value) -> uuid.UUID | None:
    """A UUID, or None for anything else ('None', malformed, wrong type): the caller answers 404."""
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


def get_owned_or_404(queryset, object_id, *, label: str, for_update: bool = False):
    """The object with this UUID inside an already-scoped queryset, or 404 ('None', malformed ids and
    other owners' objects alike: never reveal that something exists)."""
    pk = parse_uuid(object_id)
    obj = None
    if pk is not None:
        qs = queryset.filter(pk=pk).order_by()  # one row at most: the model's ordering is not compiled
        obj = next(iter((qs.select_for_update() if for_update else qs)[:1]), None)
    if obj is None:
        raise NotFoundError(f"{label} not found.")
    return obj


def parse(serializer_class, request):
    """The validated body; a body that is not a JSON object, or a bad field, is a 400."""
    if not isinstance(request.data, dict):
        raise ValidationError({"detail": "The body must be a JSON object."})
    return _bound(serializer_class).run_validation(request.data)  # what is_valid() runs, without its state


def clean(data: dict, *names: str) -> dict:
    """The named keys, with None turned into '' (a missing value never overwrites a stored one)."""
    return {n: (data.get(n) or "") for n in names}


def render(serializer_class, instance) -> dict:
    """The answer body: `instance` (data from a selector or a service) as its output serializer shows it."""
    return _bound(serializer_class).to_representation(instance)


@functools.cache
def _bound(serializer_class):
    """One serializer per class, its fields built and bound once: building them for every body and
    answer cost more than validating or rendering on the hot routes (heartbeat, config, pending
    commands). Validating (`run_validation`, which keeps nothing on the serializer; `is_valid` is
    that plus the result stored on it) and rendering only read the fields, so threads can share them
    (a nested serializer's fields are built on first use; two threads doing it at once build the same thing)."""
    serializer = serializer_class()
    serializer.fields  # noqa: B018  (builds and binds the fields now, before any thread shares them)
    return serializer


# --- Output fields (docs/API.md §0: ids are strings, money is a JSON number) -------------------------


class IdField(serializers.CharField):
    """An id the server hands out, always a string (UUIDs in the dashed form)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)


class ConstantField(serializers.Field):
    """A key whose value never changes, such as `success: true`."""

    def __init__(self, value, **kwargs):
        self.value = value
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        return self.value

    def to_representation(self, value):
        return value


@extend_schema_field({"type": "boolean", "description": "Always true."})
class SuccessField(ConstantField):
    def __init__(self, **kwargs):
        super().__init__(True, **kwargs)


@extend_schema_field({"type": "boolean", "description": "Always false."})
class FailureField(ConstantField):
    def __init__(self, **kwargs):
        super().__init__(False, **kwargs)


class FloatOrZeroField(serializers.FloatField):
    """A JSON number; an unknown value is 0.0, never null: the dashboard calls .toFixed() on it."""

    def __init__(self, **kwargs):
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        value = super().get_attribute(instance)
        return 0 if value is None else value

    def to_representation(self, value):
        return float(value)


class MoneyField(FloatOrZeroField):
    """A price (USD/h) or an amount (USD) as a JSON number, never a string; unknown is 0.0."""


class NullableMoneyField(serializers.FloatField):
    """A price that may be unknown (null), where no client does arithmetic on it."""

    def __init__(self, **kwargs):
        kwargs.setdefault("read_only", True)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_representation(self, value):
        return float(value)


class OmitEmptyMixin:
    """Keys listed in `omit_empty` are left out of the answer when empty (the agents see them only
    when they apply)."""

    omit_empty: tuple[str, ...] = ()

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for name in self.omit_empty:
            if not data.get(name):
                data.pop(name, None)
        return data


# --- Answers shared by several routes ----------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """Every error answer (spotbackend/exceptions.py): one readable line, plus the fields at fault."""

    success = FailureField()
    error = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.JSONField(), required=False, help_text="Present only for validation errors keyed by field."
    )


class SuccessMessageSerializer(serializers.Serializer):
    success = SuccessField()
    message = serializers.CharField()


# What every authenticated route can answer besides its success: no or bad token (401), inactive
# client (403), too many failed token attempts (429), database down or hung (503).
AUTH_ERRORS = (401, 403, 429, 503)
# ...and a route with a JSON body: bad input (400), body too large (413).
BODY_ERRORS = (400, 413)


def answers(ok, *errors: int, status: int = 200) -> dict:
    """`responses=` for @extend_schema: the success serializer and the error answers the route gives."""
    return {status: ok, **{code: ErrorSerializer for code in sorted({*errors, *AUTH_ERRORS})}}
