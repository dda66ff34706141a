"""Bringing customers in: a batch from the API, or a file of any size. Both check items with
onboarding.items, stage them (onboarding.staging) and merge them set-based (onboarding.merge),
in one transaction."""

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.db import OperationalError, connection, transaction
from django.utils import timezone
from psycopg.errors import DeadlockDetected, SerializationFailure

from audiences.models import Event, Topic
from audiences.services import events_announce
from audiences.stages import stage_rules_apply_to_events
from onboarding import files, parallel
from onboarding.adoption import AdoptReport, devices_adopt
from onboarding.items import API_FIELDS, FILE_FIELDS, customer_item_parse, event_item_parse
from onboarding.merge import CreatedMeanwhile, MergeSummary, stage_merge
from onboarding.merge_events import EventsSummary, events_merge
from onboarding.staging import (
    CUSTOMERS,
    DEVICES,
    EVENTS,
    customer_row,
    event_row,
    stage_create,
    stage_writer,
)

IMPORT_CAUSE = "Imported from a file"  # the cause of stage transitions a file makes
CREATED_MEANWHILE = (
    "Some of the file's customers were created elsewhere (an API call, another import) while "
    "it was imported, so nothing was written: run the import again, it will update them.")
BATCH_ATTEMPTS = 5  # a batch that lost a race with another is run again
API_ERROR_FIELDS = {"device_token": "devices"}  # the merge names file columns
Progress = Callable[[int, int, int], None]  # (bytes read, lines read, lines refused so far)


@dataclass
class ImportReport:
    lines: int = 0
    customers: dict[str, int] = field(default_factory=dict)
    devices: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    written: bool = False  # False after a dry run, or an --atomic run with refused lines

    @classmethod
    def of(cls, lines: int, summary: MergeSummary, written: bool) -> "ImportReport":
        return cls(lines=lines, customers=summary.customers, devices=summary.devices,
                   refused=summary.refused_lines, written=written)


def customers_batch_upsert(*, items: list) -> list[dict]:
    """Create or update up to a batch of customers (API items). Returns one result per item,
    in order: ``{"index", "external_id", "status"}`` with ``errors`` when invalid. Valid items
    are saved whatever the others hold."""
    topics = _topic_keys()
    parsed = [customer_item_parse(raw, topics=topics, fields=API_FIELDS) for raw in items]
    for attempt in range(BATCH_ATTEMPTS):
        try:
            outcome = _batch_merge(parsed)
            break
        except (OperationalError, CreatedMeanwhile) as error:
            if attempt == BATCH_ATTEMPTS - 1 or not _lost_a_race(error):
                raise
    results = []
    for index, (item, errors) in enumerate(parsed):
        if item is None:
            results.append({"index": index, "status": "invalid", "errors": errors})
            continue
        status, error = outcome[index]
        result = {"index": index, "external_id": item.external_id, "status": status}
        if error:
            field_name, _, reason = error.partition(": ")
            result["errors"] = {API_ERROR_FIELDS.get(field_name, field_name): [reason]}
        results.append(result)
    return results


def _batch_merge(parsed) -> dict[int, tuple[str, str | None]]:
    with transaction.atomic():
        stage_create()
        with stage_writer() as write:
            write(customer_row(index, item) for index, (item, _) in enumerate(parsed) if item)
        summary = stage_merge(now=timezone.now(), unit="item")
        _referral_events_follow(summary)
        return _statuses()


def _lost_a_race(error: Exception) -> bool:
    """Two batches that create the same customers at once, or touch them in another order
    (a deadlock PostgreSQL breaks by rolling one back): running the batch again is safe, as a
    merge changes only what differs."""
    return isinstance(error, CreatedMeanwhile) or isinstance(
        error.__cause__, DeadlockDetected | SerializationFailure)


def _statuses() -> dict[int, tuple[str, str | None]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT line, status, error FROM {CUSTOMERS}")
        return {line: (status, error) for line, status, error in cursor.fetchall()}


def _referral_events_follow(summary: MergeSummary) -> None:
    """The referral sign-ups a batch recorded run the stage rules and are announced, as one
    recorded by ``PUT /customers/{id}/`` is."""
    if not summary.referral_events:
        return
    events = list(Event.objects.filter(pk__in=[pk for pk, _, _ in summary.referral_events]))
    stage_rules_apply_to_events(events=events)
    transaction.on_commit(lambda: events_announce(events))


def _topic_keys() -> frozenset[str]:
    return frozenset(Topic.objects.values_list("key", flat=True))


def customers_import(*, path: str, file_format: str | None = None,
                     mapping: files.Mapping | None = None, dry_run: bool = False,
                     atomic: bool = False, progress: Progress | None = None,
                     on_error: Callable[[int, str], None] | None = None) -> ImportReport:
    """Import a CSV or JSON Lines file of customers (and their devices) of any size.

    Streams the file into the staging table and merges it in one transaction. Bad lines are
    reported through ``on_error(line, reason)`` in line order and skipped; with ``atomic`` a
    single bad line writes nothing, and ``dry_run`` never writes. ``progress(bytes_read,
    lines, refused)`` is called as the file is read (``refused``: lines refused so far by their
    own content; the merge may refuse more). Raises files.FileProblem when the file as a whole
    cannot be read (header, format): nothing is written then."""
    topics = _topic_keys()

    def row(line: files.Line, file_format: str) -> tuple:
        if line.error:
            return customer_row(line.number, None, line.error)
        item, errors = customer_item_parse(line.item, topics=topics, fields=FILE_FIELDS)
        if item is None:
            return customer_row(line.number, None, _reason(errors, file_format))
        return customer_row(line.number, item)

    def merge():
        return stage_merge(now=timezone.now(), stage_cause=IMPORT_CAUSE)

    run = _FileImport(path, file_format, mapping, files.CUSTOMERS, CUSTOMERS)
    lines, summary, written = run.go(row=row, merge=merge, dry_run=dry_run, atomic=atomic,
                                     progress=progress, on_error=on_error)
    return ImportReport.of(lines, summary, written)


@dataclass
class EventsImportReport:
    lines: int
    summary: EventsSummary
    written: bool


def events_import(*, path: str, file_format: str | None = None,
                  mapping: files.Mapping | None = None, dry_run: bool = False,
                  atomic: bool = False, create_customers: bool = False,
                  apply_stage_rules: bool = False, progress: Progress | None = None,
                  on_error: Callable[[int, str], None] | None = None) -> EventsImportReport:
    """Import past events from a file of any size, as customers_import does customers. Event
    ids deduplicate (an event without one gets one made of what it is); customers' last
    activity follows; nothing is announced, so history starts no journey; stage rules run
    over the new events only with ``apply_stage_rules``."""
    now = timezone.now()

    def row(line: files.Line, file_format: str) -> tuple:
        if line.error:
            return event_row(line.number, None, line.error)
        item, errors = event_item_parse(line.item, now=now)
        if item is None:
            return event_row(line.number, None, _reason(errors, file_format))
        return event_row(line.number, item)

    def merge():
        return events_merge(now=now, create_customers=create_customers,
                            apply_stage_rules=apply_stage_rules)

    run = _FileImport(path, file_format, mapping, files.EVENTS, EVENTS)
    lines, summary, written = run.go(row=row, merge=merge, dry_run=dry_run, atomic=atomic,
                                     progress=progress, on_error=on_error)
    return EventsImportReport(lines=lines, summary=summary, written=written)


class _FileImport:
    """Read a file into a staging table, merge it, report refused lines; one transaction."""

    def __init__(self, path: str, file_format: str | None, mapping, schema: files.Schema,
                 table: str):
        self.path, self.file_format = path, files.file_format(path, file_format)
        self.mapping, self.schema, self.table = mapping, schema, table
        self.lines = self.refused = 0

    def go(self, *, row, merge, dry_run, atomic, progress, on_error):
        with open(self.path, "rb") as handle, transaction.atomic():
            stage_create([self.table] + ([DEVICES] if self.table == CUSTOMERS else []))
            source = files.file_source(handle, self.file_format, self.mapping, self.schema)

            def check(record: files.Line) -> tuple:
                return row(source.complete(record), self.file_format)

            size = os.fstat(handle.fileno()).st_size
            pieces = parallel.checked(source.records(), check, size=size,
                                      as_copy_text=connection.vendor == "postgresql")
            with stage_writer(self.table) as write:
                for rows, lines, refused in pieces:
                    write(rows)
                    self.lines, self.refused = self.lines + lines, self.refused + refused
                    if progress:
                        progress(handle.tell(), self.lines, self.refused)
            if progress:
                progress(size, self.lines, self.refused)
            try:
                summary = merge()
            except CreatedMeanwhile:  # rolls this import back whole
                raise files.FileProblem(CREATED_MEANWHILE) from None
            if on_error:
                for line, reason in _errors(self.table):
                    on_error(line, reason)
            written = not dry_run and not (atomic and summary.refused_lines)
            transaction.set_rollback(not written)
        return self.lines, summary, written


def _reason(errors: dict[str, list[str]], file_format: str) -> str:
    parts = []
    for name, messages in errors.items():
        if file_format == "csv" and name.startswith("devices[0]."):
            name = "device_" + name[len("devices[0]."):]
        parts.append(f"{name}: {' '.join(messages)}")
    return "; ".join(parts)


def _errors(table: str) -> Iterator[tuple[int, str]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT line, error FROM {table} WHERE error IS NOT NULL ORDER BY line")
        while rows := cursor.fetchmany(1000):
            yield from rows


def dpn_devices_adopt(*, by: str = "id", mapping_path: str | None = None,
                      create_customers: bool = True, fcm_platform: str = "android",
                      dry_run: bool = False,
                      on_error: Callable[[str], None] = lambda reason: None) -> AdoptReport:
    """Give every django-push-notifications row without a Device one, owned by the customer
    its user (``by``: id, username or email) or the mapping file names; in one transaction,
    rolled back after a ``dry_run``. Raises adoption.MappingFileProblem when the mapping file
    cannot be read: nothing is written then."""
    with transaction.atomic():
        report = devices_adopt(by=by, mapping_path=mapping_path,
                               create_customers=create_customers, fcm_platform=fcm_platform,
                               now=timezone.now(), on_error=on_error)
        report.written = not dry_run
        transaction.set_rollback(dry_run)
    return report
