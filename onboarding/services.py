"""Bringing customers in: a batch from the API, or a file of any size. Both check items with
onboarding.items, stage them (onboarding.staging) and merge them set-based (onboarding.merge),
in one transaction."""

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from audiences.models import Event, Topic
from audiences.services import events_announce
from audiences.stages import stage_rules_apply_to_events
from onboarding import files
from onboarding.adoption import AdoptReport, devices_adopt
from onboarding.items import API_FIELDS, FILE_FIELDS, customer_item_parse
from onboarding.merge import MergeSummary, stage_merge
from onboarding.staging import CUSTOMERS, customer_row, stage_create, stage_writer

IMPORT_CAUSE = "Imported from a file"  # the cause of stage transitions a file makes
PROGRESS_EVERY = 2000  # lines between progress callbacks
API_ERROR_FIELDS = {"device_token": "devices"}  # the merge names file columns


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
    with transaction.atomic():
        stage_create()
        with stage_writer() as write:
            write(customer_row(index, item) for index, (item, _) in enumerate(parsed) if item)
        summary = stage_merge(now=timezone.now(), unit="item")
        outcome = _statuses()
        _referral_events_follow(summary)
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
                     atomic: bool = False, progress: Callable[[int, int], None] | None = None,
                     on_error: Callable[[int, str], None] | None = None) -> ImportReport:
    """Import a CSV or JSON Lines file of customers (and their devices) of any size.

    Streams the file into the staging table and merges it in one transaction. Bad lines are
    reported through ``on_error(line, reason)`` in line order and skipped; with ``atomic`` a
    single bad line writes nothing, and ``dry_run`` never writes. ``progress(bytes_read,
    lines)`` is called as the file is read. Raises files.FileProblem when the file as a whole
    cannot be read (header, format): nothing is written then."""
    file_format = files.file_format(path, file_format)
    topics = _topic_keys()
    with open(path, "rb") as handle, transaction.atomic():
        stage_create()
        counter = _Counter(handle, progress)
        with stage_writer() as write:
            write(counter.count(_rows(handle, file_format, mapping, topics)))
        lines = counter.lines
        if progress:
            progress(os.fstat(handle.fileno()).st_size, lines)
        summary = stage_merge(now=timezone.now(), stage_cause=IMPORT_CAUSE)
        if on_error:
            for line, reason in _errors():
                on_error(line, reason)
        written = not dry_run and not (atomic and summary.refused_lines)
        transaction.set_rollback(not written)
    return ImportReport.of(lines, summary, written)


class _Counter:
    def __init__(self, handle, progress):
        self.handle, self.progress, self.lines = handle, progress, 0

    def count(self, rows: Iterator[tuple]) -> Iterator[tuple]:
        for self.lines, row in enumerate(rows, start=1):
            if self.progress and self.lines % PROGRESS_EVERY == 0:
                self.progress(self.handle.tell(), self.lines)
            yield row


def _rows(handle, file_format: str, mapping, topics) -> Iterator[tuple]:
    reader = files.csv_lines if file_format == "csv" else files.jsonl_lines
    for line in reader(handle, mapping):
        if line.error:
            yield customer_row(line.number, None, line.error)
            continue
        item, errors = customer_item_parse(line.item, topics=topics, fields=FILE_FIELDS)
        if item is None:
            yield customer_row(line.number, None, _reason(errors, file_format))
        else:
            yield customer_row(line.number, item)


def _reason(errors: dict[str, list[str]], file_format: str) -> str:
    parts = []
    for name, messages in errors.items():
        if file_format == "csv" and name.startswith("devices[0]."):
            name = "device_" + name[len("devices[0]."):]
        parts.append(f"{name}: {' '.join(messages)}")
    return "; ".join(parts)


def _errors() -> Iterator[tuple[int, str]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT line, error FROM {CUSTOMERS} WHERE error IS NOT NULL "
                       "ORDER BY line")
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
