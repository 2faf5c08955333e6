"""`FlatSerializer.fast_parse` returns exactly what the serializer would, or None (then the serializer
runs and names the problem): checked on real bodies and on many generated variants."""
import random

import pytest

from agents.api.serializers import ExecutedInput, HeartbeatInput, RegisterInput
from agents.tests import payloads

VALUES = [None, "", " ", "x", " x", "x ", "online", "offline", "weird", "spot", "i-0aaa1111", "a" * 70,
          "a" * 300, "\\u00e9t\\u00e9", "emoji-\\U0001f680", "nul\\x00", 0, 1.5, True, False, [], ["i-1"], {"a": 1}]


def serializer_result(cls, data):
    s = cls(data=data)
    return dict(s.validated_data) if s.is_valid() else None


@pytest.mark.parametrize("cls,body", [
    (HeartbeatInput, payloads.heartbeat()),
    (HeartbeatInput, {"status": "offline", "monitored_instances": []}),
    (RegisterInput, payloads.register_v4(token="sb_x")),
    (RegisterInput, payloads.register_v3(token="sb_x")),
])
def test_real_bodies_take_the_fast_path(cls, body):
    fast = cls.fast_parse(body)
    assert fast is not None
    assert fast == serializer_result(cls, body)


def test_a_serializer_with_validation_hooks_always_runs_in_full():
    assert ExecutedInput.fast_parse({"success": True, "message": "done"}) is None


@pytest.mark.parametrize("cls", [HeartbeatInput, RegisterInput])
def test_fast_path_never_disagrees_with_the_serializer(cls):
    rng = random.Random(8)
    names = list(cls._declared_fields)
    fast_taken = 0
    for _ in range(400):
        body = {n: rng.choice(VALUES) for n in rng.sample(names, rng.randint(0, len(names)))}
        fast = cls.fast_parse(body)
        if fast is not None:
            fast_taken += 1
            assert fast == serializer_result(cls, body), body
    assert fast_taken > 0
