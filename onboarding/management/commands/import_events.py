"""python manage.py import_events FILE [--format csv|jsonl] [--map MAP.json] [--dry-run]
[--atomic] [--create-customers] [--apply-stage-rules]: past events from a file of any size.
Imported history starts no journey."""

from onboarding.command_base import ImportCommand
from onboarding.services import EventsImportReport, events_import


class Command(ImportCommand):
    help = ("Import past events from a CSV or JSON Lines file of any size: event ids "
            "deduplicate, last activity follows, no journey starts. Columns: README.")

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--create-customers", action="store_true",
                            help="Create customers the file names and the database does not "
                                 "have (by default their lines are refused).")
        parser.add_argument("--apply-stage-rules", action="store_true",
                            help="Run the event stage rules over the imported events (the "
                                 "moves are recorded, and start no journey).")

    def handle(self, *args, dry_run, atomic, **options):
        report = self.run_import(events_import, options, dry_run=dry_run, atomic=atomic,
                                create_customers=options["create_customers"],
                                apply_stage_rules=options["apply_stage_rules"])
        self.stdout.write("\n".join(self.totals(report) + self.closing(
            report, dry_run=dry_run, atomic=atomic)))

    def totals(self, report: EventsImportReport) -> list[str]:
        summary, verb = report.summary, "were" if report.written else "would be"
        return [
            f"Events {verb}: {summary.events.get('created', 0):,} created, "
            f"{summary.events.get('duplicate', 0):,} already there (duplicates).",
            f"Customers {verb} created: {summary.customers_created:,}; stage moves: "
            f"{summary.stage_moves:,}.",
            f"Lines refused: {summary.refused_lines:,} of {report.lines:,}.",
        ]
