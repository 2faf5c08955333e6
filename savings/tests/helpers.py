from datetime import datetime, timezone as dt_tz
from decimal import Decimal

from agents.models import Instance, OnDemandPriceSample, SpotPriceSample
from agents.tests.factories import AgentFactory, SpotPoolFactory


def at(day: int, hour: int = 0, minute: int = 0, month: int = 1) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=dt_tz.utc)


def pool(az: str = "us-east-1a"):
    return SpotPoolFactory(az=az)


def spot_price(p, price: str, when: datetime):
    return SpotPriceSample.objects.create(pool=p, price=Decimal(price), observed_at=when)


def ondemand_price(price: str, when: datetime, fallback: bool = False, instance_type: str = "t3.medium"):
    return OnDemandPriceSample.objects.create(
        instance_type=instance_type, region="us-east-1", price=Decimal(price), observed_at=when, is_fallback=fallback
    )


def instance(client, *, mode: str, start: datetime, end: datetime | None = None, p=None, agent=None,
             state: str | None = None):
    agent = agent or AgentFactory(client=client, with_instance=False)
    state = state or ("primary" if end is None else "replaced")
    return Instance.objects.create(
        agent=agent,
        client=client,
        instance_id=f"i-{Instance.objects.count() + 1:08x}",
        instance_type="t3.medium",
        region="us-east-1",
        az=p.az if p else "us-east-1a",
        mode=mode,
        pool=p,
        state=state,
        is_primary=True if state == "primary" else None,
        started_at=start,
        ended_at=end,
    )
