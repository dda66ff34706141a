"""What the import commands share: the file arguments, a progress bar on stderr, every refused
line on stdout as it is found, and a file problem as a command error."""

import os

from django.core.management.base import BaseCommand, CommandError

from journeyhub.progress import ProgressBar
from onboarding.files import FileProblem, Mapping


class ImportCommand(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("file", help="A .csv or .jsonl file.")
        parser.add_argument("--format", dest="file_format", choices=["csv", "jsonl"],
                            help="When the file name does not say.")
        parser.add_argument("--map", dest="map_file",
                            help="A JSON mapping of another system's columns and values.")
        parser.add_argument("--dry-run", action="store_true",
                            help="Report what would be written and refused; write nothing.")
        parser.add_argument("--atomic", action="store_true",
                            help="All or nothing: one refused line and nothing is written.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def run_import(self, service, options: dict, **choices):
        """Call ``service`` (customers_import, events_import) on the command's file with the
        given ``choices`` (dry_run, atomic, ...); its report."""
        file, map_file = options["file"], options["map_file"]
        no_progress = options["no_progress"]
        if not os.path.isfile(file):
            raise CommandError(f"No file at {file}.")
        bar = None if no_progress else ProgressBar(self.stderr, os.path.getsize(file),
                                                   unit="lines")
        try:
            report = service(
                path=file, file_format=options["file_format"],
                mapping=Mapping.load(map_file) if map_file else None,
                progress=(lambda done, lines, _refused: bar.update(done, rows=lines))
                if bar else None,
                on_error=lambda line, reason: self.stdout.write(f"line {line}: {reason}"),
                **choices,
            )
        except FileProblem as problem:
            raise CommandError(str(problem)) from problem
        if bar:
            bar.finish()
        return report

    def closing(self, report, *, dry_run: bool, atomic: bool) -> list[str]:
        if dry_run:
            return ["Dry run: nothing was written."]
        if atomic and not report.written:
            return ["--atomic: nothing was written because lines were refused; fix them and "
                    "run the import again."]
        return []
