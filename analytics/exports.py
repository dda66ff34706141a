"""Raw exports of deliveries and events, streamed with constant memory.

Rows come from a server-side cursor PAGE_SIZE rows at a time (one read-only transaction, so
the file is a consistent snapshot; on PostgreSQL in no particular order, elsewhere by id) and
are written as they come: a million rows cost the memory of a few pages. The admin streams the
result through a StreamingHttpResponse; ``manage.py export_report`` writes it to stdout or a
file. A download holds its transaction open until it ends, which delays vacuum on a busy
database: export big ranges with the command on a replica if that matters.

Formats:
- ``csv``: a header row, then one row per record, lines ending in ``\n``; times in UTC as
  PostgreSQL writes them (``2026-03-01 10:00:02.5+00``), JSON values as text.
- ``json``: one JSON array of objects, written one object per line, so that it parses as a whole
  and can also be read line by line (strip the leading ``[`` / ``,`` and trailing ``]``).
- ``xlsx``: openpyxl's write-only workbook, built in a temporary file and then streamed. Excel
  holds at most 1,048,576 rows per sheet; a bigger export is refused before it starts."""

import contextlib
import csv
import io
import itertools
import json
import queue
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction
from django.db.models import CharField, Exists, Func, OuterRef, QuerySet

from analytics.exports_xlsx import workbook_write
from audiences.models import Event
from campaigns.models import Enrollment, StepSend
from notifications.models import Delivery

PAGE_SIZE = 5000  # rows fetched from the cursor at a time
READ_AHEAD_PAGES = 1  # pages fetched before the writer wants them: memory is 2-3 pages
FILE_CHUNK_BYTES = 64 * 1024  # an XLSX file is streamed in pieces of this size
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
    columns: tuple[str, ...]  # the header: the fields' columns, after ``complete``
    fields: tuple[str, ...]  # values_list paths read by SQL, the first being the id
    json_columns: frozenset[str]  # columns holding JSON objects (text in CSV and XLSX)
    queryset: Callable[[ExportFilter], QuerySet]
    # Adds columns to each page of rows (given a fresh one per export).
    complete: Callable[[], Callable[[list[tuple]], list[tuple]]] | None = None

    def rows(self, filters: ExportFilter) -> Iterator[tuple]:
        return itertools.chain.from_iterable(self.pages(filters))

    def pages(self, filters: ExportFilter) -> Iterator[list[tuple]]:
        """Every matching row, PAGE_SIZE at a time, through a server-side cursor in one
        read-only transaction: a consistent snapshot, in constant memory.

        On PostgreSQL the rows come in no particular order: a cursor cannot use parallel
        workers, and sorting a million joined rows took longer than reading them. Elsewhere
        they come by id."""
        postgres = connection.vendor == "postgresql"
        queryset = self.queryset(filters).values_list(*self.selected())
        queryset = queryset.order_by() if postgres else queryset.order_by("id")
        sql, params = queryset.query.sql_with_params()
        with transaction.atomic():
            if postgres:
                _plan_for_all_rows()
            # Django's own iterator would turn JSON and times into Python objects per row;
            # the database's text is what the files hold, so the raw cursor's rows are kept.
            cursor = (connection.connection.cursor(name=f"export_{self.name}") if postgres
                      else connection.cursor())
            complete = self.complete() if self.complete else None
            try:
                cursor.execute(sql, params)
                for page in _read_ahead(cursor) if postgres else _pages(cursor):
                    yield complete(page) if complete else page
            finally:
                cursor.close()

    def selected(self) -> list:
        """The fields, with times as text made by the database (see UtcText)."""
        return [UtcText(field) if field.endswith("_at") else field for field in self.fields]


def _plan_for_all_rows() -> None:
    """A cursor is planned for its first rows by default (nested loops down the id index),
    and JIT compiles for row estimates that joins inflate: an export reads every row."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL cursor_tuple_fraction = 1.0")
        cursor.execute("SET LOCAL jit = off")


def _pages(cursor) -> Iterator[list]:
    while page := cursor.fetchmany(PAGE_SIZE):
        yield page


def _read_ahead(cursor) -> Iterator[list]:
    """Pages fetched by a thread one step ahead of the caller, so that PostgreSQL prepares
    the next page while Python writes this one (the two overlap on two cores). At most
    READ_AHEAD_PAGES wait in memory."""
    pages: queue.Queue = queue.Queue(maxsize=READ_AHEAD_PAGES)
    stop = threading.Event()

    def fetch() -> None:
        try:
            while not stop.is_set():
                page = cursor.fetchmany(PAGE_SIZE)
                pages.put(page)
                if not page:
                    return
        except Exception as error:  # handed to the caller, raised there
            pages.put(error)

    worker = threading.Thread(target=fetch, name="export-read-ahead", daemon=True)
    worker.start()
    try:
        while (page := pages.get()) != []:
            if isinstance(page, Exception):
                raise page
            yield page
    finally:
        stop.set()
        while worker.is_alive():  # a reader who stopped early: unblock the worker's put
            with contextlib.suppress(queue.Empty):
                pages.get_nowait()
            worker.join(0.05)


class UtcText(Func):
    """A timestamp as the text PostgreSQL writes for a UTC time, ``2026-03-01 10:00:02.5+00``
    (ISO 8601 with a space; the fraction of a second without trailing zeros), made by the
    database: turning a million timestamps into Python objects only to print them again was
    most of an export's time. SQLite gives the same text."""

    output_field = CharField()

    def as_postgresql(self, compiler, connection, **extra_context):
        # Django keeps its connections' TimeZone in UTC when USE_TZ is on: then the plain
        # cast (PostgreSQL's own output) is the cheapest way to this text.
        template = ("(%(expressions)s)::text" if connection.timezone_name == "UTC"
                    else "((%(expressions)s AT TIME ZONE 'UTC')::text || '+00')")
        return self.as_sql(compiler, connection, template=template, **extra_context)

    def as_sqlite(self, compiler, connection, **extra_context):
        # Django stores "YYYY-MM-DD HH:MM:SS[.ffffff]" in UTC.
        template = ("(substr(%(expressions)s, 1, 19) || CASE WHEN length(%(expressions)s) > 19"
                    " THEN rtrim(substr(%(expressions)s, 20), '0') ELSE '' END || '+00')")
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


NO_CAMPAIGN = (None, None, None, None)
SEND_CACHE_MAX = 100_000  # sends remembered per export before the cache starts over


def _campaign_columns() -> Callable[[list[tuple]], list[tuple]]:
    """Campaign id and name, step id and variant name of each row's send, put after send_id.

    Looked up in Python for the sends of each page not seen before: an export covers a few
    thousand sends but a million deliveries, and four more joins per row were a third of the
    database's work."""
    known: dict[int, tuple] = {}

    def complete(page: list[tuple]) -> list[tuple]:
        missing = {row[1] for row in page}.difference(known)
        if missing:
            if len(known) > SEND_CACHE_MAX:
                known.clear()
            known.update(dict.fromkeys(missing, NO_CAMPAIGN))
            for send_id, *info in StepSend.objects.filter(send_id__in=missing).values_list(
                    "send_id", "campaign_id", "campaign__name", "step_id", "variant__name"):
                known[send_id] = tuple(info)
        return [row[:2] + known[row[1]] + row[2:] for row in page]

    return complete


DELIVERIES = Dataset(
    name="deliveries",
    columns=("id", "send_id", "campaign_id", "campaign", "step_id", "variant", "customer",
             "kind", "application_id", "status", "reason", "error", "created_at", "sent_at",
             "received_at", "opened_at"),
    fields=("id", "send_id", "customer__external_id", "kind", "application_id", "status",
            "reason", "error", "created_at", "sent_at", "received_at", "opened_at"),
    json_columns=frozenset(),
    queryset=_deliveries,
    complete=_campaign_columns,
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
    pages = _counted(dataset.pages(filters), progress)
    writer = {"csv": _csv_pieces, "json": _json_pieces, "xlsx": _xlsx_pieces}[file_format]
    return writer(dataset, pages)


def _counted(pages: Iterable[list], progress) -> Iterator[list]:
    done = 0
    for page in pages:
        yield page
        done += len(page)
        if progress is not None:
            progress(done)
    if progress is not None and done == 0:
        progress(0)


def _json_text(value) -> str | None:
    """A JSON column as text: the database's own text when it gives text."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _json_value(value):
    return json.loads(value) if isinstance(value, str) else value


def _with(row: tuple, indexes: list[int], convert) -> tuple | list:
    if not indexes:
        return row
    row = list(row)
    for index in indexes:
        row[index] = convert(row[index])
    return row


def _json_indexes(dataset: Dataset) -> list[int]:
    return [i for i, column in enumerate(dataset.columns) if column in dataset.json_columns]


def _csv_pieces(dataset: Dataset, pages: Iterable[list]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(dataset.columns)
    as_json = _json_indexes(dataset)
    for page in pages:
        writer.writerows([_with(row, as_json, _json_text) for row in page] if as_json else page)
        yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> bytes:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text.encode()


def _json_pieces(dataset: Dataset, pages: Iterable[list]) -> Iterator[bytes]:
    separator = "[\n"
    as_json = _json_indexes(dataset)
    for page in pages:
        lines = []
        for row in page:
            record = dict(zip(dataset.columns, _with(row, as_json, _json_value), strict=True))
            lines.append(separator + json.dumps(record, ensure_ascii=False))
            separator = ",\n"
        yield "".join(lines).encode()
    yield b"\n]\n" if separator == ",\n" else b"[]\n"


def _xlsx_pieces(dataset: Dataset, pages: Iterable[list]) -> Iterator[bytes]:
    with tempfile.NamedTemporaryFile(suffix=".xlsx") as handle:
        rows = _at_most(itertools.chain.from_iterable(pages), XLSX_MAX_ROWS)
        workbook_write(handle.name, title=dataset.name, columns=dataset.columns, rows=rows,
                       json_columns=dataset.json_columns)
        handle.seek(0)
        while piece := handle.read(FILE_CHUNK_BYTES):
            yield piece


def _at_most(rows: Iterable, limit: int) -> Iterator:
    """The rows, refused past ``limit``: the table may have grown since it was counted."""
    for count, row in enumerate(rows, 1):
        if count > limit:
            raise ExportError(f"More than {limit:,} rows do not fit in an Excel sheet: "
                              "choose CSV or JSON, or a shorter date range.")
        yield row


def export_filename(*, dataset_name: str, file_format: str, filters: ExportFilter) -> str:
    parts = [dataset_name]
    if filters.campaign_id is not None:
        parts.append(f"campaign-{filters.campaign_id}")
    parts += [str(day) for day in (filters.since, filters.until) if day]
    return "-".join(parts) + f".{file_format}"
