"""Staging tables: where checked customers (or events) wait, one row per item or file line,
before the merge moves them into the real tables with set-based SQL (onboarding.merge,
onboarding.merge_events).

Temporary tables, private to the connection and gone at the end of its transaction. On
PostgreSQL rows stream in through COPY; on SQLite through batched INSERTs. Attribute and device
values travel as JSON text and are read by the database's JSON functions."""

import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

from django.db import connection

from audiences.models import customer_bucket
from audiences.services import EventInput
from onboarding.codes import referral_codes
from onboarding.items import CustomerItem

CUSTOMERS = "jh_stage_customer"
DEVICES = "jh_stage_device"
EVENTS = "jh_stage_event"
CODE_POOL = 10_000  # referral codes drawn per os.urandom call
INSERT_BATCH = 1000  # rows per INSERT on SQLite (its limit is 32,766 parameters)

CUSTOMER_COLUMNS = (
    "line", "external_id", "first_name", "last_name", "email", "locale", "time_zone", "stage",
    "attrs_set", "attrs_del", "topics", "push_opt_out", "referral_code", "referred_by_code",
    "created_at", "bucket", "fp", "new_code", "devices", "error",
)
# Filled by the merge: which row speaks for a customer named on several, the customer's id,
# the merged attributes (SQLite) and the outcome.
MERGE_COLUMNS = ("primary_line", "customer_id", "attrs_full", "status")
DEVICE_COLUMNS = (
    "line", "external_id", "kind", "token", "platform", "app_version", "locale", "time_zone",
    "environment", "permission", "application_id", "p256dh", "auth", "browser",
)
EVENT_COLUMNS = (
    "line", "external_id", "name", "properties", "occurred_at", "client_event_id", "bucket",
    "new_code", "error",
)
TABLES = {
    CUSTOMERS: CUSTOMER_COLUMNS + MERGE_COLUMNS,
    DEVICES: DEVICE_COLUMNS + ("provider_id", "device_id", "changed", "moved"),
    EVENTS: EVENT_COLUMNS + ("customer_id", "status"),
}


def _types() -> dict[str, str]:
    json_type = "jsonb" if connection.vendor == "postgresql" else "text"
    big = "bigint"
    return {
        "line": big, "push_opt_out": "boolean", "created_at": "timestamp with time zone",
        "bucket": "integer", "fp": big, "primary_line": big, "customer_id": big,
        "attrs_set": json_type, "attrs_del": json_type, "topics": json_type,
        "devices": json_type, "attrs_full": json_type, "provider_id": big, "device_id": big,
        "changed": "boolean", "moved": "boolean", "properties": json_type,
        "occurred_at": "timestamp with time zone",
    }


def stage_create(tables: Iterable[str] = (CUSTOMERS, DEVICES)) -> None:
    """Fresh staging tables for this transaction."""
    types = _types()
    # Half-full pages let the merge's updates of staged rows stay on their page (HOT), with
    # no new index entries: a third of the cost of rewriting a million rows.
    on_commit = (" WITH (fillfactor = 50) ON COMMIT DROP" if connection.vendor == "postgresql"
                 else "")
    with connection.cursor() as cursor:
        for table in tables:
            columns = TABLES[table]
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
            body = ", ".join(f"{name} {types.get(name, 'text')}" for name in columns)
            cursor.execute(f"CREATE TEMPORARY TABLE {table} ({body}){on_commit}")


def customer_row(line: int, item: CustomerItem | None, error: str | None = None) -> tuple:
    """The staging row of one item (or of a refused line: its number and reason only)."""
    if item is None:
        return (line,) + (None,) * (len(CUSTOMER_COLUMNS) - 2) + (error,)
    attrs_set = attrs_del = None
    if item.attributes is not None:
        attrs_set = _json({k: v for k, v in item.attributes.items() if v is not None})
        deleted = [k for k, v in item.attributes.items() if v is None]
        attrs_del = _json(sorted(deleted)) if deleted else None
    return (
        line, item.external_id, item.first_name, item.last_name, item.email, item.locale,
        item.time_zone, item.stage, attrs_set, attrs_del,
        None if item.opted_out_topics is None else _json(item.opted_out_topics),
        item.push_opt_out, item.referral_code, item.referred_by_code,
        item.created_at and connection.ops.adapt_datetimefield_value(item.created_at),
        customer_bucket(item.external_id),
        item.fingerprint(None if attrs_set is None else attrs_set + (attrs_del or "")),
        next(_codes),
        _json(item.devices) if item.devices else None, None,
    )


def _code_pool() -> Iterator[str]:
    """Codes for whichever rows turn out to be new customers, drawn many at a time."""
    while True:
        yield from referral_codes(CODE_POOL)


_codes = _code_pool()


def _json(value) -> str:
    """Compact, and in one key order, so that equal values stage as equal text."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def event_row(line: int, item: EventInput | None, error: str | None = None) -> tuple:
    """The staging row of one event. An event without the sender's id gets one made of what
    it is (customer, name, time, properties): importing the same history again then finds
    every event already there."""
    if item is None:
        return (line,) + (None,) * (len(EVENT_COLUMNS) - 2) + (error,)
    properties = _json(item.properties)
    client_id = item.client_event_id or _event_id(item, properties)
    return (
        line, item.customer_external_id, item.name, properties,
        connection.ops.adapt_datetimefield_value(item.occurred_at), client_id,
        customer_bucket(item.customer_external_id), next(_codes), None,
    )


def _event_id(item: EventInput, properties: str) -> str:
    what = "\x1f".join((item.customer_external_id, item.name, item.occurred_at.isoformat(),
                        properties))
    return "imported:" + hashlib.sha256(what.encode()).hexdigest()[:40]


def copy_text(rows: Iterable[tuple]) -> str:
    """Rows in the text format of PostgreSQL's COPY (what stage_writer takes as a str), built
    where the rows are, e.g. in a helper process: sending one string costs less than rows."""
    return "".join("\t".join(map(_copy_value, row)) + "\n" for row in rows)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_value(value) -> str:
    if value is None:
        return "\\N"
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


@contextmanager
def stage_writer(table: str = CUSTOMERS) -> Iterator:
    """A function that stages rows for ``table``: an iterable of rows, or on PostgreSQL also
    a str of rows in COPY's text format (copy_text)."""
    names = {CUSTOMERS: CUSTOMER_COLUMNS, EVENTS: EVENT_COLUMNS}[table]
    if connection.vendor == "postgresql":
        columns = ", ".join(names)
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                def write(rows: Iterable[tuple] | str) -> None:
                    if isinstance(rows, str):
                        copy.write(rows)
                        return
                    for row in rows:
                        copy.write_row(row)

                yield write
        return
    placeholders = ", ".join(["%s"] * len(names))
    sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({placeholders})"
    with connection.cursor() as cursor:
        def write(rows: Iterable[tuple]) -> None:
            batch = []
            for row in rows:
                batch.append(row)
                if len(batch) >= INSERT_BATCH:
                    cursor.executemany(sql, batch)
                    batch = []
            if batch:
                cursor.executemany(sql, batch)

        yield write
