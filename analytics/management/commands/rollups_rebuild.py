"""python manage.py rollups_rebuild --since YYYY-MM-DD --until YYYY-MM-DD"""

from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from analytics.rollups import rollups_rebuild


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date: give YYYY-MM-DD.")


class Command(BaseCommand):
    help = ("Rebuild the daily analytics rollups for a range of UTC days (inclusive) from the "
            "raw deliveries, enrollments, conversions and stage transitions. Safe to run at "
            "any time: each day is replaced in one transaction.")

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True, help="First day, YYYY-MM-DD (UTC).")
        parser.add_argument("--until", help="Last day, YYYY-MM-DD (UTC); default today.")

    def handle(self, *args, since, until, **options):
        first = _date(since)
        last = _date(until) if until else timezone.now().date()
        if first > last:
            raise CommandError("--since must not be after --until.")
        days = rollups_rebuild(since=first, until=last,
                               log=lambda line: self.stderr.write(line))
        self.stdout.write(f"Rebuilt {days} day(s), {first} to {last}.")
