"""python manage.py import_customers FILE [--format csv|jsonl] [--map MAP.json] [--dry-run]
[--atomic]: customers and their devices from a file of any size; a progress bar on stderr,
every refused line with its number and reason on stdout, then the totals."""

from onboarding.command_base import ImportCommand
from onboarding.services import ImportReport, customers_import


class Command(ImportCommand):
    help = ("Import customers (and their devices) from a CSV or JSON Lines file of any size. "
            "Columns and examples: README, 'Bringing customers in'.")

    def handle(self, *args, dry_run, atomic, **options):
        report = self.run_import(customers_import, options, dry_run=dry_run, atomic=atomic)
        self.stdout.write("\n".join(self.totals(report) + self.closing(
            report, dry_run=dry_run, atomic=atomic)))

    def totals(self, report: ImportReport) -> list[str]:
        customers, devices = report.customers, report.devices
        verb = "were" if report.written else "would be"
        return [
            f"Customers {verb}: {customers.get('created', 0):,} created, "
            f"{customers.get('updated', 0):,} updated, {customers.get('unchanged', 0):,} "
            "unchanged.",
            f"Devices {verb}: {devices.get('created', 0):,} created, "
            f"{devices.get('updated', 0):,} updated ({devices.get('moved', 0):,} moved from "
            f"another customer), {devices.get('unchanged', 0):,} unchanged.",
            f"Lines refused: {report.refused:,} of {report.lines:,}.",
        ]
