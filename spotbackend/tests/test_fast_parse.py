"""`FlatSerializer.fast_parse` returns exactly what the serializer would, or None (then the serializer
runs and names the problem): checked on real bodies and on many generated variants."""
import random
from datetime import datetime

import pytest

from agents.api.interruptions import RebalanceRecommendationApi, TerminationImminentApi
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


# --- the pricing report: nested, with prices and times ------------------------------------------------

PRICE_VALUES = [None, 0, 0.0125, 1, "0.0131", "cheap", True, -0.5, 1e7, 999999.9999999, 0.012345678, float("nan"),
                float("inf"), [], {"price": 1}]
TIME_VALUES = [None, "2026-11-26T19:23:54.196952", "2026-11-26T20:00:00.5Z", "2026-11-26T20:00:00+02:00",
               "yesterday", "", 5, "2026-13-40T00:00:00"]


def pricing_variants(rng):
    body = payloads.pricing_v4(mode=rng.choice(["spot", "ondemand"]), pool_id=rng.choice(["t3.medium.us-east-1a", None]))
    pricing = body["pricing"]
    for _ in range(rng.randint(0, 3)):
        kind = rng.randrange(8)
        if kind == 0:
            pricing[rng.choice(["on_demand_price", "current_spot_price"])] = rng.choice(PRICE_VALUES)
        elif kind == 1 and isinstance(pricing.get("spot_pools"), list) and pricing["spot_pools"]:
            rng.choice(pricing["spot_pools"])["price"] = rng.choice(PRICE_VALUES)
        elif kind == 2:
            pricing["collected_at"] = rng.choice(TIME_VALUES)
        elif kind == 3:
            pricing[rng.choice(["cheapest_pool", "spot_pools", "collected_at", "on_demand_price"])] = rng.choice(
                [None, [], {}, "x"])
        elif kind == 4:
            pricing.pop(rng.choice(list(pricing)), None)
        elif kind == 5:
            body[rng.choice(["extra", "spot_pools", "collected_at"])] = rng.choice([None, [], "x"])
        elif kind == 6 and isinstance(pricing.get("spot_pools"), list) and pricing["spot_pools"]:
            rng.choice(pricing["spot_pools"])[rng.choice(["pool_id", "az", "instance_type", "other"])] = rng.choice(
                VALUES)
        elif kind == 7:
            body["instance"][rng.choice(["instance_id", "mode", "pool_id", "other"])] = rng.choice(VALUES)
    return body


def test_real_pricing_reports_take_the_fast_path():
    from agents.api.serializers import PricingReportInput

    for body in (payloads.pricing_v4(), payloads.pricing_v4(mode="ondemand", pool_id=None)):
        fast = PricingReportInput.fast_parse(body)
        assert fast is not None
        assert fast == serializer_result(PricingReportInput, body)
    assert PricingReportInput.fast_parse(payloads.pricing_v3()) is None  # the v3.2.0 shape: the serializer


def test_pricing_fast_path_never_disagrees_with_the_serializer():
    from agents.api.serializers import PricingReportInput

    rng = random.Random(11)
    fast_taken = refused = 0
    for _ in range(600):
        body = pricing_variants(rng)
        fast = PricingReportInput.fast_parse(body)
        full = serializer_result(PricingReportInput, body)
        if fast is not None:
            fast_taken += 1
            assert fast == full, body
        refused += full is None
    assert fast_taken > 100 and refused > 50


# --- termination notices and rebalance recommendations: flat, with times ----------------------------------

NOTICE_INPUTS = [TerminationImminentApi.TerminationNoticeInput, RebalanceRecommendationApi.RebalanceRecommendationInput]


@pytest.mark.parametrize("cls", NOTICE_INPUTS)
def test_a_real_notice_takes_the_fast_path_with_the_serializers_times(cls):
    body = {k: v for k, v in payloads.termination_v4().items() if k in cls._declared_fields}
    fast = cls.fast_parse(body)
    assert fast is not None and fast == serializer_result(cls, body)
    assert fast["detected_at"].tzinfo is not None  # a naive time is made aware, as the serializer does


@pytest.mark.parametrize("cls", NOTICE_INPUTS)
def test_the_notice_fast_path_never_disagrees_with_the_serializer(cls):
    rng = random.Random(9)
    names = list(cls._declared_fields)
    taken = 0
    for _ in range(400):
        body = {n: rng.choice(TIME_VALUES if n in ("termination_time", "time", "detected_at") and rng.random() < 0.7
                              else VALUES) for n in rng.sample(names, rng.randint(0, len(names)))}
        fast = cls.fast_parse(body)
        if fast is not None:
            taken += any(isinstance(v, datetime) for v in fast.values())
            assert fast == serializer_result(cls, body), body
    assert taken > 0  # with times among them
