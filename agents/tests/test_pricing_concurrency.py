"""Price ingestion cannot deadlock (issue 8 item 4): many agents report the same pools at once, each in
its own order, on real connections (one per thread, committed rows), while the risk job runs."""
import random
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from agents.models import SpotPool, SpotPriceSample
from agents.services.pricing import PoolQuote, PricingReport, pricing_report_record
from agents.services.risk import pool_risk_analyze_all
from agents.tests.factories import AgentFactory

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8
REPORTS = 12
POOLS = [f"t3.medium.us-east-1{z}" for z in "abcdef"] + [f"m5.large.us-east-1{z}" for z in "abcdef"]


def price_of(pool_id: str, minute: int) -> Decimal:
    """One price per (pool, time), so that the latest price of a pool is known exactly."""
    return Decimal(1 + (sum(map(ord, pool_id)) * 31 + minute * 7) % 997) / Decimal(10000)


def test_concurrent_reports_on_the_same_pools_never_fail(client_obj, monkeypatch):
    monkeypatch.setattr("agents.services.price_writes.RETRIES", 1)  # no safety net: the design itself must hold
    agents = [AgentFactory(client=client_obj, instance_type="t3.medium", region="us-east-1") for _ in range(THREADS)]
    base = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    # The pools exist for half of them only: the others are created by the concurrent reports.
    SpotPool.objects.bulk_create(
        [SpotPool(id=p, instance_type=p.rsplit(".", 1)[0], region="us-east-1", az=p.rsplit(".", 1)[1]) for p in POOLS[::2]]
    )
    errors, seen_backwards = [], []
    start = threading.Barrier(THREADS + 2)
    done, reported = threading.Event(), threading.Event()

    def reporter(n: int):
        rnd = random.Random(n)
        try:
            start.wait()
            for k in range(REPORTS):
                minute = rnd.randrange(0, 40)  # out of order, and often the same moment as another agent
                pools = POOLS[:]
                rnd.shuffle(pools)
                report = PricingReport(
                    instance_id=agents[n].instance_id, instance_type="t3.medium", region="us-east-1",
                    az="us-east-1a", mode="spot", pool_id=pools[0],
                    on_demand_price=Decimal("0.08"),  # prices below are up to 0.0998: all plausible (x1.5)
                    spot_pools=[PoolQuote(p, "", "", price_of(p, minute)) for p in pools],
                    collected_at=base + timedelta(minutes=minute),
                )
                pricing_report_record(agent=agents[n], report=report)
        except Exception as e:  # noqa: BLE001 - every failure is the test's finding
            errors.append(repr(e))
        finally:
            connection.close()

    def risk_runner():
        try:
            start.wait()
            for _ in range(3):
                pool_risk_analyze_all()
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        finally:
            connection.close()

    def watcher():
        """A pool's latest price never moves backwards in time, as any reader sees it."""
        last: dict[str, object] = {}
        start.wait()
        while not done.is_set():
            for pid, at in SpotPool.objects.filter(latest_price_at__isnull=False).values_list("pk", "latest_price_at"):
                if pid in last and at < last[pid]:
                    seen_backwards.append((pid, last[pid], at))
                last[pid] = at
        connection.close()

    threads = [threading.Thread(target=reporter, args=(n,)) for n in range(THREADS)]
    threads.append(threading.Thread(target=risk_runner))
    watch = threading.Thread(target=watcher)
    for t in [*threads, watch]:
        t.start()
    for t in threads:
        t.join(timeout=120)
    reported.set()
    done.set()
    watch.join(timeout=30)

    assert errors == []
    assert seen_backwards == []
    # Every pool's latest price is the price of its latest sample; each (pool, moment) stored once.
    for pool in SpotPool.objects.filter(pk__in=POOLS):
        latest = SpotPriceSample.objects.filter(pool=pool).order_by("-observed_at").first()
        assert pool.latest_price_at == latest.observed_at
        assert pool.latest_price == latest.price == price_of(pool.pk, int((latest.observed_at - base).total_seconds() // 60))
    moments = {(s.pool_id, s.observed_at) for s in SpotPriceSample.objects.all()}
    assert SpotPriceSample.objects.count() == len(moments)
