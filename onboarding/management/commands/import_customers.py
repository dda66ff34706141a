"""python manage.py import_customers FILE [--format csv|jsonl] [--map MAP.json] [--dry-run]
[--atomic]: customers and their devices from a file of any size; a progress bar on stderr,
every refused line with its number and reason on stdout, then the totals."""

import os

from django.core.management.base import BaseCommand, CommandError

from journeyhub.progress import ProgressBar
from onboarding.files import FileProblem, Mapping
from onboarding.services import ImportReport, customers_import


class Command(BaseCommand):
    help = ("Import customers (and their devices) from a CSV or JSON Lines file of any size. "
            "Columns and examples: README, 'Bringing customers in'.")

    def add_arguments(self, parser):
        parser.add_argument("file", help="A .csv or .jsonl file.")
        parser.add_argument("--format", dest="file_format", choices=["csv", "jsonl"],
                            help="When the file name does not say.")
        parser.add_argument("--map", dest="map_file",
                            help="A JSON mapping of another system's columns and values.")
        parser.add_argument("--dry-run", action="store_true",
                            help="Report what would be created, updated and refused; write "
                                 "nothing.")
        parser.add_argument("--atomic", action="store_true",
                            help="All or nothing: one refused line and nothing is written.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, file, file_format, map_file, dry_run, atomic, no_progress,
               **options):
        if not os.path.isfile(file):
            raise CommandError(f"No file at {file}.")
        bar = None if no_progress else ProgressBar(self.stderr, os.path.getsize(file),
                                                   unit="lines")
        try:
            mapping = Mapping.load(map_file) if map_file else None
            report = customers_import(
                path=file, file_format=file_format, mapping=mapping, dry_run=dry_run,
                atomic=atomic,
                progress=(lambda done, lines, _refused: bar.update(done, rows=lines))
                if bar else None,
                on_error=lambda line, reason: self.stdout.write(f"line {line}: {reason}"),
            )
        except FileProblem as problem:
            raise CommandError(str(problem)) from problem
        if bar:
            bar.finish()
        self.stdout.write(summary_text(report, dry_run=dry_run, atomic=atomic))


def summary_text(report: ImportReport, *, dry_run: bool, atomic: bool) -> str:
    customers, devices = report.customers, report.devices
    verb = "would be" if not report.written else "were"
    lines = [
        f"Customers {verb}: {customers.get('created', 0):,} created, "
        f"{customers.get('updated', 0):,} updated, {customers.get('unchanged', 0):,} unchanged.",
        f"Devices {verb}: {devices.get('created', 0):,} created, "
        f"{devices.get('updated', 0):,} updated ({devices.get('moved', 0):,} moved from "
        f"another customer), {devices.get('unchanged', 0):,} unchanged.",
        f"Lines refused: {report.refused:,} of {report.lines:,}.",
    ]
    if dry_run:
        lines.append("Dry run: nothing was written.")
    elif not report.written and atomic:
        lines.append("--atomic: nothing was written because lines were refused; fix them and "
                     "run the import again.")
    return "\n".join(lines)
