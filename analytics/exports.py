"""Raw exports of deliveries and events, streamed with constant memory.

Rows come, in id order, from a server-side cursor PAGE_SIZE rows at a time (one read-only
transaction, so the file is a consistent snapshot) and are written as they come: a million
rows cost the memory of one page. The admin streams the result through a
StreamingHttpResponse; ``manage.py export_report`` writes it to stdout or a file. A download
holds its transaction open until it ends, which delays vacuum on a busy database: export big
ranges with the command on a replica if that matters.

Formats:
- ``csv``: a header row, then one row per record; times in ISO 8601 UTC
  (``2026-11-28T21:56:48.123456Z``), JSON values as text.
- ``json``: one JSON array of objects, written one object per line, so that it parses as a whole
  and can also be read line by line (strip the leading ``[`` / ``,`` and trailing ``]``).
- ``xlsx``: openpyxl's write-only workbook, built in a temporary file and then streamed. Excel
  holds at most 1,048,576 rows per sheet; a bigger export is refused before it starts."""

import csv
import io
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction
from django.db.models import CharField, Exists, Func, OuterRef, QuerySet

from audiences.models import Event
from campaigns.models import Enrollment, StepSend
from notifications.models import Delivery

PAGE_SIZE = 5000  # rows fetched from the cursor at a time: the only rows held in memory
FILE_CHUNK_BYTES = 64 * 1024  # an XLSX file is streamed in pieces of this size
TEXT_CHUNK_ROWS = 500  # CSV/JSON rows joined into one piece of the response
XLSX_MAX_ROWS = 1_048_576 - 1  # Excel's rows per sheet, less the header row
FORMATS = ("csv", "json", "xlsx")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class ExportError(ValueError):
    """An export we refuse, with the reason for the person who asked."""


@dataclass(frozen=True)
class ExportFilter:
    """``since``/``until`` are whole days (UTC), both included; ``campaign_id`` narrows to one
    campaign (deliveries of its sends; events of its enrolled customers)."""

    since: date | None = None
    until: date | None = None
    campaign_id: int | None = None

    def time_range(self) -> tuple[datetime | None, datetime | None]:
        start = _midnight(self.since) if self.since else None
        end = _midnight(self.until + timedelta(days=1)) if self.until else None
        return start, end


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


@dataclass(frozen=True)
class Dataset:
    name: str
    columns: tuple[str, ...]  # the header, in the order of ``fields``
    fields: tuple[str, ...]  # values_list paths, the first being the id
    json_columns: frozenset[str]  # columns holding JSON objects (text in CSV and XLSX)
    queryset: Callable[[ExportFilter], QuerySet]

    def rows(self, filters: ExportFilter) -> Iterator[tuple]:
        """Every matching row, by id, through a server-side cursor (PAGE_SIZE rows per fetch)
        in one read-only transaction: a consistent snapshot, in constant memory."""
        queryset = self.queryset(filters).order_by("id").values_list(*self.selected())
        with transaction.atomic():
            if connection.vendor == "postgresql":
                _plan_for_all_rows()
            yield from queryset.iterator(chunk_size=PAGE_SIZE)

    def selected(self) -> list:
        """The fields, with times as ISO 8601 text made by the database (see UtcIsoText)."""
        return [UtcIsoText(field) if column.endswith("_at") else field
                for column, field in zip(self.columns, self.fields, strict=True)]


def _plan_for_all_rows() -> None:
    """A cursor is planned for its first rows by default (nested loops down the id index);
    an export reads them all, as fast as hash joins and one sort allow."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL cursor_tuple_fraction = 1.0")


class UtcIsoText(Func):
    """A timestamp as ISO 8601 text in UTC, ``2026-11-28T21:56:48.123456Z``, written by the
    database: turning a million timestamps into Python objects only to print them again was
    most of an export's time."""

    output_field = CharField()

    def as_postgresql(self, compiler, connection, **extra_context):
        template = ("to_char(%(expressions)s AT TIME ZONE 'UTC', "
                    "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
        return self.as_sql(compiler, connection, template=template, **extra_context)

    def as_sqlite(self, compiler, connection, **extra_context):
        # Django stores "YYYY-MM-DD HH:MM:SS[.ffffff]" in UTC.
        template = ("substr(%(expressions)s, 1, 10) || 'T' || substr(%(expressions)s, 12, 8)"
                    " || '.' || substr(%(expressions)s || '.000000', 21, 6) || 'Z'")
        return self.as_sql(compiler, connection, template=template, **extra_context)


def _deliveries(filters: ExportFilter) -> QuerySet:
    start, end = filters.time_range()
    queryset = Delivery.objects.all()
    if start:
        queryset = queryset.filter(created_at__gte=start)
    if end:
        queryset = queryset.filter(created_at__lt=end)
    if filters.campaign_id is not None:
        sends = StepSend.objects.filter(campaign_id=filters.campaign_id).values("send_id")
        queryset = queryset.filter(send_id__in=sends)
    return queryset


def _events(filters: ExportFilter) -> QuerySet:
    start, end = filters.time_range()
    queryset = Event.objects.all()
    if start:
        queryset = queryset.filter(occurred_at__gte=start)
    if end:
        queryset = queryset.filter(occurred_at__lt=end)
    if filters.campaign_id is not None:
        enrolled = Enrollment.objects.filter(
            campaign_id=filters.campaign_id, customer_id=OuterRef("customer_id")
        )
        queryset = queryset.filter(Exists(enrolled))
    return queryset


DELIVERIES = Dataset(
    name="deliveries",
    columns=("id", "send_id", "campaign_id", "campaign", "step_id", "variant", "customer",
             "kind", "application_id", "status", "reason", "error", "created_at", "sent_at",
             "received_at", "opened_at"),
    fields=("id", "send_id", "send__step_send__campaign_id", "send__step_send__campaign__name",
            "send__step_send__step_id", "send__step_send__variant__name",
            "customer__external_id", "kind", "application_id", "status", "reason", "error",
            "created_at", "sent_at", "received_at", "opened_at"),
    json_columns=frozenset(),
    queryset=_deliveries,
)
EVENTS = Dataset(
    name="events",
    columns=("id", "customer", "name", "properties", "occurred_at", "received_at"),
    fields=("id", "customer__external_id", "name", "properties", "occurred_at", "received_at"),
    json_columns=frozenset({"properties"}),
    queryset=_events,
)
DATASETS = {dataset.name: dataset for dataset in (DELIVERIES, EVENTS)}


def dataset_get(name: str) -> Dataset:
    if name not in DATASETS:
        raise ExportError(f"Unknown export {name!r}; choose one of: {', '.join(DATASETS)}.")
    return DATASETS[name]


def export_estimate(*, dataset: Dataset, filters: ExportFilter) -> int:
    """About how many rows the export holds, for a progress bar: PostgreSQL's planner estimate
    (no second pass over a big table), an exact count elsewhere."""
    queryset = dataset.queryset(filters)
    if connection.vendor != "postgresql":
        return queryset.count()
    plan = json.loads(queryset.values("id").explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


def export_stream(*, dataset: Dataset, file_format: str, filters: ExportFilter,
                  progress: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """The export as pieces of bytes. ``progress(rows_done)`` is called as rows are written.
    Raises ExportError before the first piece if the export cannot be made."""
    if file_format not in FORMATS:
        raise ExportError(f"Unknown format {file_format!r}; choose one of: {', '.join(FORMATS)}.")
    if file_format == "xlsx":
        rows_wanted = dataset.queryset(filters).count()
        if rows_wanted > XLSX_MAX_ROWS:
            raise ExportError(
                f"{rows_wanted:,} rows do not fit in an Excel sheet ({XLSX_MAX_ROWS:,} at most): "
                "choose CSV or JSON, or a shorter date range."
            )
    rows = _counted(dataset.rows(filters), progress)
    writer = {"csv": _csv_pieces, "json": _json_pieces, "xlsx": _xlsx_pieces}[file_format]
    return writer(dataset, rows)


def _counted(rows: Iterable[tuple], progress) -> Iterator[tuple]:
    if progress is None:
        yield from rows
        return
    done = 0
    for done, row in enumerate(rows, 1):
        yield row
        if done % PAGE_SIZE == 0:
            progress(done)
    progress(done)


def _json_text(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _csv_pieces(dataset: Dataset, rows: Iterable[tuple]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(dataset.columns)
    as_json = [i for i, column in enumerate(dataset.columns) if column in dataset.json_columns]
    for count, row in enumerate(rows, 1):
        if as_json:
            row = list(row)
            for index in as_json:
                row[index] = _json_text(row[index])
        writer.writerow(row)
        if count % TEXT_CHUNK_ROWS == 0:
            yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> bytes:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text.encode()


def _json_pieces(dataset: Dataset, rows: Iterable[tuple]) -> Iterator[bytes]:
    lines, separator = [], "[\n"
    for row in rows:
        record = dict(zip(dataset.columns, row, strict=True))
        lines.append(separator + json.dumps(record, ensure_ascii=False))
        separator = ",\n"
        if len(lines) == TEXT_CHUNK_ROWS:
            yield "".join(lines).encode()
            lines = []
    lines.append("\n]\n" if separator == ",\n" else "[]\n")
    yield "".join(lines).encode()


def _xlsx_pieces(dataset: Dataset, rows: Iterable[tuple]) -> Iterator[bytes]:
    from analytics.exports_xlsx import workbook_write  # openpyxl is imported only for XLSX

    with tempfile.NamedTemporaryFile(suffix=".xlsx") as handle:
        workbook_write(handle.name, title=dataset.name, columns=dataset.columns, rows=rows,
                       json_columns=dataset.json_columns, max_rows=XLSX_MAX_ROWS)
        handle.seek(0)
        while piece := handle.read(FILE_CHUNK_BYTES):
            yield piece


def export_filename(*, dataset_name: str, file_format: str, filters: ExportFilter) -> str:
    parts = [dataset_name]
    if filters.campaign_id is not None:
        parts.append(f"campaign-{filters.campaign_id}")
    parts += [str(day) for day in (filters.since, filters.until) if day]
    return "-".join(parts) + f".{file_format}"
