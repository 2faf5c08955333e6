"""agents/services/pricing.py and switches.py: price reports, on-demand price, savings impact."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from agents.models import OnDemandPriceSample, SpotPool, SpotPriceSample
from agents.services.ondemand import ondemand_price_get
from agents.services.pricing import PoolQuote, PricingReport, pricing_is_fallback, pricing_report_record
from agents.services.switches import savings_impact
from agents.tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


class TestPricing:
    def test_report_twice_stores_samples_once(self, client_obj):
        agent = AgentFactory(client=client_obj)
        at = timezone.now()
        report = PricingReport(
            instance_id=agent.instance_id, instance_type="t3.medium", region="us-east-1", az="us-east-1a",
            mode="spot", pool_id="t3.medium.us-east-1a", on_demand_price=Decimal("0.0416"),
            spot_pools=[PoolQuote("t3.medium.us-east-1a", "t3.medium", "us-east-1a", Decimal("0.0125")),
                        PoolQuote("t3.medium.us-east-1b", "t3.medium", "us-east-1b", Decimal("0.00001"))],
            collected_at=at,
        )
        pricing_report_record(agent=agent, report=report)
        pricing_report_record(agent=agent, report=report)
        assert SpotPriceSample.objects.count() == 2 and OnDemandPriceSample.objects.count() == 1
        assert SpotPool.objects.get(pk="t3.medium.us-east-1b").latest_price == Decimal("0.000010")
        # An older report does not move the latest price back.
        older = PricingReport(spot_pools=[PoolQuote("t3.medium.us-east-1b", "", "", Decimal("0.5"))],
                              collected_at=at - timedelta(hours=1))
        pricing_report_record(agent=agent, report=older)
        assert SpotPool.objects.get(pk="t3.medium.us-east-1b").latest_price == Decimal("0.000010")

    def test_real_ondemand_preferred_over_fallback(self):
        now = timezone.now()
        OnDemandPriceSample.objects.create(instance_type="t3.medium", region="us-east-1", price=Decimal("0.0416"),
                                           observed_at=now - timedelta(hours=1))
        OnDemandPriceSample.objects.create(instance_type="t3.medium", region="us-east-1", price=Decimal("0.1"),
                                           is_fallback=True, observed_at=now)
        assert ondemand_price_get(instance_type="t3.medium", region="us-east-1") == Decimal("0.0416")

    def test_fallback_detection(self):
        assert pricing_is_fallback(on_demand=Decimal("0.1"), spot_prices=[], v3=False)
        assert not pricing_is_fallback(on_demand=Decimal("0.0416"), spot_prices=[], v3=False)
        assert pricing_is_fallback(on_demand=Decimal("0.03"), spot_prices=[Decimal("0.01")], v3=True)


def test_savings_impact_definition():
    assert savings_impact(old_hourly=Decimal("0.0416"), new_hourly=Decimal("0.0125")) == Decimal("0.0291")
    assert savings_impact(old_hourly=Decimal("0.0125"), new_hourly=Decimal("0.0416")) == Decimal("-0.0291")
    assert savings_impact(old_hourly=None, new_hourly=Decimal("0.01")) == Decimal("0")
