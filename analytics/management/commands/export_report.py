"""python manage.py export_report NAME --format csv|json|xlsx --since DAY --until DAY
[--campaign ID] [--output FILE]: the data on stdout (or in FILE), a progress bar on stderr."""

import os
import sys
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from analytics.exports import (
    DATASETS,
    FORMATS,
    ExportError,
    ExportFilter,
    dataset_get,
    export_estimate,
    export_stream,
)
from analytics.resources import REPORT_NAMES, report_export
from campaigns.models import Campaign
from journeyhub.progress import ProgressBar


class Command(BaseCommand):
    help = ("Export raw deliveries or events (streamed, constant memory) or a report, as CSV, "
            "JSON or XLSX, to stdout or --output. A progress bar goes to stderr.")

    def add_arguments(self, parser):
        parser.add_argument("name", help=f"One of: {', '.join(_names())}.")
        parser.add_argument("--format", dest="file_format", default="csv",
                            help=f"One of: {', '.join(FORMATS)} (default csv).")
        parser.add_argument("--since", help="First day, YYYY-MM-DD (UTC), included.")
        parser.add_argument("--until", help="Last day, YYYY-MM-DD (UTC), included.")
        parser.add_argument("--campaign", help="Only this campaign (its id).")
        parser.add_argument("--output", help="Write to this file instead of stdout.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, name, file_format, output, **options):
        if name not in _names():
            raise CommandError(f"Unknown export {name!r}; choose one of: {', '.join(_names())}.")
        filters = _filters(options)
        if file_format not in FORMATS:
            raise CommandError(
                f"Unknown --format {file_format!r}; choose one of: {', '.join(FORMATS)}.")
        if file_format == "xlsx" and not output and sys.stdout.isatty():
            raise CommandError("XLSX is a binary file: give --output FILE.")
        try:
            pieces = self._pieces(name, file_format, filters, options["no_progress"])
            written = self._write(pieces, output)
        except ExportError as error:
            raise CommandError(str(error)) from error
        if self._bar is not None:
            self._bar.finish()
        if output:
            self.stderr.write(f"Wrote {written:,} bytes to {output}")

    _bar = None

    def _pieces(self, name, file_format, filters, quiet):
        if name not in DATASETS:
            return iter([report_export(name=name, file_format=file_format, filters=filters)])
        dataset = dataset_get(name)
        if not quiet:
            self._bar = ProgressBar(self.stderr, export_estimate(dataset=dataset, filters=filters))
        return export_stream(dataset=dataset, file_format=file_format, filters=filters,
                             progress=self._bar.update if self._bar else None)

    def _write(self, pieces, output) -> int:
        if output:
            return _write_file(pieces, output)
        binary = getattr(self.stdout._out, "buffer", None)
        written = 0
        try:
            for piece in pieces:
                if binary is not None:
                    binary.write(piece)
                else:
                    self.stdout.write(piece.decode(), ending="")
                written += len(piece)
            (binary or self.stdout).flush()
        except BrokenPipeError:  # e.g. piped into head: the reader has what it wanted
            pass
        return written


def _write_file(pieces, output: str) -> int:
    """A regular file is written beside and renamed at the end, so a failed export never
    leaves a file that looks complete; a device or a pipe (/dev/null, /dev/stdout) is written
    to directly, never replaced."""
    written = 0
    regular = not os.path.exists(output) or os.path.isfile(output)
    target = f"{output}.part" if regular else output
    try:
        with open(target, "wb") as handle:
            for piece in pieces:
                written += handle.write(piece)
        if regular:
            os.replace(target, output)
    except OSError as error:
        raise CommandError(f"Cannot write {output}: {error.strerror}") from error
    finally:
        if regular and os.path.exists(target):
            os.remove(target)
    return written


def _names() -> list[str]:
    return [*DATASETS, *REPORT_NAMES]


def _filters(options) -> ExportFilter:
    since, until = _day(options, "since"), _day(options, "until")
    if until < since:
        raise CommandError(f"--until {until} is before --since {since}.")
    campaign = options.get("campaign")
    if campaign is not None and not str(campaign).isdigit():
        raise CommandError(f"--campaign must be a campaign id (a number), not {campaign!r}.")
    campaign_id = int(campaign) if campaign is not None else None
    if campaign_id is not None:
        if not Campaign.objects.filter(pk=campaign_id).exists():
            raise CommandError(f"--campaign {campaign_id}: no such campaign.")
    return ExportFilter(since=since, until=until, campaign_id=campaign_id)


def _day(options, key: str) -> date:
    value = options.get(key)
    if not value:
        raise CommandError(f"--{key} YYYY-MM-DD is required.")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--{key} {value!r} is not a date: use YYYY-MM-DD.") from None
