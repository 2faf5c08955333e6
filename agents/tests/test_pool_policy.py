"""agents/services/pool_policy.py and pools.py: pool ids and the pool choice."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from agents.models import SpotPool
from agents.services.pool_policy import pool_select
from agents.services.pools import pool_parse_id, region_of_az
from agents.tests.factories import SpotPoolFactory, TerminationEventFactory

pytestmark = pytest.mark.django_db


class TestPools:
    def test_parse_and_region(self):
        assert pool_parse_id("t3.medium.us-east-1b") == ("t3.medium", "us-east-1b")
        assert pool_parse_id("nonsense") is None
        assert region_of_az("us-east-1b") == "us-east-1"
        assert region_of_az("eu-west-2a") == "eu-west-2"

    def test_select_ranks_risk_then_price_and_skips_stale_cooldown_avoid(self):
        now = timezone.now()
        SpotPoolFactory(az="us-east-1a", latest_price=Decimal("0.005"), risk_recommendation="caution")
        SpotPoolFactory(az="us-east-1b", latest_price=Decimal("0.010"), risk_recommendation="safe")
        SpotPoolFactory(az="us-east-1c", latest_price=Decimal("0.001"), risk_recommendation="avoid")
        SpotPoolFactory(az="us-east-1d", latest_price=Decimal("0.002"), latest_price_at=now - timedelta(days=2))
        cooling = SpotPoolFactory(az="us-east-1e", latest_price=Decimal("0.003"))
        # Cooldown comes from notices (agents/services/market.py): two clients agree on this one.
        for _ in range(2):
            TerminationEventFactory(pool=cooling, detected_at=now - timedelta(minutes=1))
        choice = pool_select(instance_type="t3.medium", region="us-east-1")
        assert choice.pool.pk == "t3.medium.us-east-1b" and choice.target_mode == "spot"
        choice = pool_select(instance_type="t3.medium", region="us-east-1", exclude_pool_ids=("t3.medium.us-east-1b",))
        assert choice.pool.pk == "t3.medium.us-east-1a"
        safe = SpotPool.objects.get(pk="t3.medium.us-east-1b")
        choice = pool_select(instance_type="t3.medium", region="us-east-1", exclude_pool_ids=(safe.pk,), max_risk_of=safe)
        assert choice.pool is None and choice.target_mode == "ondemand" and "on-demand" in choice.reason
