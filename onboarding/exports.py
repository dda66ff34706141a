"""Customers and their devices out, in the columns import_customers reads: a file exported here
imports back with nothing changed. Streamed a page of customers at a time (keyset on id), so
memory stays bounded at any size.

CSV: one line per device (a customer without devices has one line with the device columns
empty); a customer's lines repeat the customer's columns, which the import reads as the same
customer. Formula-like text is written with a leading apostrophe (journeyhub.spreadsheet).
JSON Lines: one object per customer, its devices as a list."""

import csv
import io
import json
from collections.abc import Iterator

from django.db.models import F, QuerySet, TextField
from django.db.models.functions import Coalesce

from audiences.models import Customer, TopicOptOut
from journeyhub.spreadsheet import cell_escaped
from notifications.models import Device

PAGE = 2000  # customers per query: bounded memory, few round trips
FORMATS = ("csv", "jsonl")
CUSTOMER_COLUMNS = (
    "external_id", "first_name", "last_name", "email", "locale", "time_zone", "stage",
    "attributes", "opted_out_topics", "push_opt_out", "referral_code", "referred_by_code",
    "created_at", "stage_changed_at", "last_seen_at",
)
DEVICE_COLUMNS = (
    "kind", "token", "platform", "app_version", "locale", "time_zone", "environment",
    "permission", "application_id", "p256dh", "auth", "browser",
)
CSV_HEADER = CUSTOMER_COLUMNS + tuple(f"device_{name}" for name in DEVICE_COLUMNS)


def customers_export(*, file_format: str = "csv", customers: QuerySet | None = None,
                     progress=None) -> Iterator[bytes]:
    """The export as pieces of bytes. ``customers`` narrows it (a segment's members, a
    filtered admin list); ``progress(customers_done)`` follows it."""
    pages = _pages(customers if customers is not None else Customer.objects.all())
    if file_format == "jsonl":
        return _jsonl(pages, progress)
    return _csv(pages, progress)


def _pages(customers: QuerySet) -> Iterator[list[dict]]:
    after = 0
    columns = [name for name in CUSTOMER_COLUMNS
               if name not in ("opted_out_topics", "referred_by_code")]
    while True:
        page = list(customers.filter(pk__gt=after).order_by("pk")
                    .values("pk", "referred_by__referral_code", *columns)[:PAGE])
        if not page:
            return
        ids = [row["pk"] for row in page]
        topics, devices = _opt_outs(ids), _devices(ids)
        for row in page:
            row["referred_by_code"] = row.pop("referred_by__referral_code")
            row["opted_out_topics"] = topics.get(row["pk"], [])
            row["devices"] = devices.get(row.pop("pk"), [])
        yield page
        after = ids[-1]


def _opt_outs(ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for customer_id, key in (TopicOptOut.objects.filter(customer_id__in=ids)
                             .order_by("customer_id", "topic__key")
                             .values_list("customer_id", "topic__key")):
        found.setdefault(customer_id, []).append(key)
    return found


def _devices(ids: list[int]) -> dict[int, list[dict]]:
    found: dict[int, list[dict]] = {}
    rows = (
        Device.objects.filter(customer_id__in=ids).order_by("customer_id", "pk")
        .annotate(
            token=Coalesce("fcm__registration_id", "apns__registration_id",
                           "webpush__registration_id", output_field=TextField()),
            application_id=Coalesce("fcm__application_id", "apns__application_id",
                                    "webpush__application_id"),
            p256dh=F("webpush__p256dh"), auth=F("webpush__auth"), browser=F("webpush__browser"),
        )
        .values("customer_id", *DEVICE_COLUMNS)
    )
    for row in rows:
        customer_id = row.pop("customer_id")
        if row["browser"]:
            row["browser"] = row["browser"].lower()
        found.setdefault(customer_id, []).append(
            {name: value for name, value in row.items() if value not in (None, "")})
    return found


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, list):
        return " ".join(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return cell_escaped(str(value))


def _csv(pages: Iterator[list[dict]], progress) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    done = 0
    for page in pages:
        for row in page:
            cells = [_text(row[name]) for name in CUSTOMER_COLUMNS]
            for device in row["devices"] or [{}]:
                writer.writerow(cells + [_text(device.get(name)) for name in DEVICE_COLUMNS])
        done += len(page)
        if progress:
            progress(done)
        yield _drain(buffer)
    yield _drain(buffer)


def _jsonl(pages: Iterator[list[dict]], progress) -> Iterator[bytes]:
    done = 0
    for page in pages:
        lines = []
        for row in page:
            item = {name: value for name, value in row.items()
                    if value is not None and name != "devices"}
            for name in ("created_at", "stage_changed_at", "last_seen_at"):
                if name in item:
                    item[name] = item[name].isoformat()
            if row["devices"]:
                item["devices"] = row["devices"]
            lines.append(json.dumps(item, ensure_ascii=False, sort_keys=True))
        done += len(page)
        if progress:
            progress(done)
        yield ("\n".join(lines) + "\n").encode()


def _drain(buffer: io.StringIO) -> bytes:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text.encode()
