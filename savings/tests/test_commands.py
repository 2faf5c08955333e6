from datetime import date, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from savings.models import SavingsSnapshot
from savings.tests.helpers import at, instance, ondemand_price, pool, spot_price

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("recalculate_savings", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def fleet(client_obj):
    p = pool()
    ondemand_price("0.04", at(1))
    spot_price(p, "0.01", at(1))
    instance(client_obj, mode="spot", p=p, start=at(9, 0), end=at(11, 0))
    return p


def test_one_date(client_obj, other_client, fleet):
    out = run("--date", "2026-01-10")
    assert SavingsSnapshot.objects.get(client=client_obj, snapshot_date=date(2026, 1, 10)).total_savings == Decimal("0.72")
    assert SavingsSnapshot.objects.get(client=other_client, snapshot_date=date(2026, 1, 10)).total_savings == 0
    assert "Recalculated 2 snapshot(s)" in out and "0.7200" in out


def test_range_for_one_client_with_progress(client_obj, other_client, fleet):
    out = run("--from", "2026-01-01", "--to", "2026-01-12", "--client", str(client_obj.pk))
    rows = SavingsSnapshot.objects.filter(client=client_obj)
    assert rows.count() == 12
    assert not SavingsSnapshot.objects.filter(client=other_client).exists()
    assert sum(r.total_savings for r in rows) == Decimal("1.44")  # 48 h x 0.03
    assert "[1/12] 2026-01-01" in out and "[12/12] 2026-01-12" in out
    # The same range again: same rows.
    run("--from", "2026-01-01", "--to", "2026-01-12", "--client", client_obj.email)
    assert SavingsSnapshot.objects.filter(client=client_obj).count() == 12


def test_default_is_yesterday_and_today(client_obj):
    run()
    today = timezone.now().date()
    assert set(SavingsSnapshot.objects.values_list("snapshot_date", flat=True)) == {today, today - timedelta(days=1)}


@pytest.mark.parametrize(
    "args,message",
    [
        (["--date", "2026-13-01"], "not a date"),
        (["--from", "yesterday"], "not a date"),
        (["--from", "2026-01-05", "--to", "2026-01-01"], "after"),
        (["--date", "2026-01-01", "--from", "2026-01-01"], "either"),
        (["--to", "2026-01-01"], "needs --from"),
        (["--date", "2999-01-01"], "future"),
        (["--date", "2026-01-01", "--client", "nobody@example.com"], "Unknown client"),
        (["--date", "2026-01-01", "--client", "00000000-0000-0000-0000-000000000000"], "Unknown client"),
    ],
)
def test_bad_arguments_fail_clearly(client_obj, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not SavingsSnapshot.objects.exists()


def test_bad_date_exits_non_zero(tmp_path):
    import os
    import subprocess
    import sys

    from django.conf import settings

    proc = subprocess.run(
        [sys.executable, "manage.py", "recalculate_savings", "--date", "bad"],
        capture_output=True, text=True, timeout=60, cwd=settings.BASE_DIR,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"},
    )
    assert proc.returncode != 0
    assert "not a date" in proc.stderr
