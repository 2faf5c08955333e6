"""Recompute savings snapshots: `--date D`, or `--from D1 [--to D2]`, optionally for one `--client`."""
from datetime import date, timedelta, timezone as dt_tz

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from spotbackend.api import parse_uuid
from clients.models import Client
from savings.services import savings_compute_range

PROGRESS_FROM_DAYS = 7  # ranges longer than this print one line per day


def _date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise CommandError(f"{option}: '{value}' is not a date; use YYYY-MM-DD.") from None


class Command(BaseCommand):
    help = "Recompute the daily savings snapshots of a day or a range of days (default: yesterday and today)."

    def add_arguments(self, parser):
        parser.add_argument("--date", help="one UTC day, YYYY-MM-DD")
        parser.add_argument("--from", dest="date_from", help="first UTC day of a range, YYYY-MM-DD")
        parser.add_argument("--to", dest="date_to", help="last UTC day of a range (default: today)")
        parser.add_argument("--client", help="only this client (its id or e-mail)")

    def handle(self, *args, **opts):
        now = timezone.now()
        today = now.astimezone(dt_tz.utc).date()
        if opts["date"] and (opts["date_from"] or opts["date_to"]):
            raise CommandError("Give either --date or --from/--to, not both.")
        if opts["date"]:
            day_from = day_to = _date(opts["date"], "--date")
        elif opts["date_from"] or opts["date_to"]:
            if not opts["date_from"]:
                raise CommandError("--to needs --from.")
            day_from = _date(opts["date_from"], "--from")
            day_to = _date(opts["date_to"], "--to") if opts["date_to"] else today
        else:
            day_from, day_to = today - timedelta(days=1), today
        if day_from > day_to:
            raise CommandError(f"--from {day_from} is after --to {day_to}.")
        if day_to > today:
            raise CommandError(f"{day_to} is in the future (today is {today} UTC).")

        clients = None
        if opts["client"]:
            value = opts["client"]
            pk = parse_uuid(value)
            found = Client.objects.filter(pk=pk) if pk else Client.objects.filter(email__iexact=value)
            clients = list(found)
            if len(clients) != 1:
                raise CommandError(f"Unknown client '{value}' (give its id or e-mail)." if not clients
                                   else f"Several clients have the e-mail '{value}'; give the id.")

        days = (day_to - day_from).days + 1

        def progress(n: int, total: int, day: date) -> None:
            if total > PROGRESS_FROM_DAYS:
                self.stdout.write(f"[{n}/{total}] {day}")

        summary = savings_compute_range(day_from=day_from, day_to=day_to, clients=clients, now=now, progress=progress)
        self.stdout.write(
            self.style.SUCCESS(
                f"Recalculated {summary.snapshots} snapshot(s): {summary.clients} client(s) x {days} day(s) "
                f"from {day_from} to {day_to}; savings in that range {summary.total_savings:.4f} USD."
            )
        )
