"""python manage.py export_customers [--format csv|jsonl] [--segment KEY] [--output FILE]:
customers and their devices in import_customers' columns, streamed at any size; a progress bar
on stderr."""

import sys

from django.core.management.base import BaseCommand, CommandError

from audiences.models import Customer, Segment
from audiences.selectors import segment_customers
from journeyhub.progress import ProgressBar
from onboarding.exports import FORMATS, customers_export


class Command(BaseCommand):
    help = ("Export customers and their devices as CSV or JSON Lines that import_customers "
            "reads back unchanged.")

    def add_arguments(self, parser):
        parser.add_argument("--format", dest="file_format", choices=FORMATS, default="csv")
        parser.add_argument("--segment", help="Only this segment's members (its key).")
        parser.add_argument("--output", help="Write to this file instead of stdout.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, file_format, segment, output, no_progress, **options):
        customers = Customer.objects.all()
        if segment:
            found = Segment.objects.filter(key=segment).first()
            if found is None:
                raise CommandError(f"No segment with key {segment!r}.")
            customers = segment_customers(found)
        bar = None if no_progress else ProgressBar(self.stderr, customers.count(),
                                                   unit="customers")
        pieces = customers_export(file_format=file_format, customers=customers,
                                  progress=bar.update if bar else None)
        if output:
            with open(output, "wb") as handle:
                for piece in pieces:
                    handle.write(piece)
        else:
            stream = sys.stdout.buffer
            for piece in pieces:
                stream.write(piece)
            stream.flush()
        if bar:
            bar.finish()
