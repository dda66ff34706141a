"""A customer's data, gathered for their right of access, as one JSON document.

Every app that keeps rows about a customer contributes a section: audiences its profile,
consent, segments, stage history and events; upper apps (devices, deliveries, enrollments...)
register theirs in ``AppConfig.ready()`` with ``register_access_section``, so audiences never
imports them. The document is written as it is read, a row at a time, so a customer with
100,000 events costs the same memory as one with ten."""

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from audiences.models import Customer
from journeyhub.json_deep import DeepSafeEncoder

Rows = Callable[[Customer], Any]  # -> one dict (many=False) or an iterable of dicts


@dataclass(frozen=True)
class AccessSection:
    name: str
    rows: Rows
    schema: Any  # a DRF serializer class describing one row: the API docs show it
    many: bool = True


_SECTIONS: dict[str, AccessSection] = {}


def register_access_section(name: str, *, rows: Rows, schema: Any, many: bool = True) -> None:
    """Add the section ``name`` to every customer's data export: ``rows(customer)`` gives its
    content (a dict when ``many`` is False, else an iterable of dicts, read lazily),
    ``schema`` the serializer that documents one row."""
    section = AccessSection(name, rows, schema, many)
    if _SECTIONS.get(name, section) != section:
        raise ImproperlyConfigured(f"Data export section {name!r} is already taken.")
    _SECTIONS[name] = section


def access_sections() -> list[AccessSection]:
    return list(_SECTIONS.values())


def access_export(customer: Customer) -> Iterator[bytes]:
    """The customer's data as a JSON object of sections, in pieces: one line per row, so the
    document parses as a whole and also reads line by line."""
    yield b"{"
    for number, section in enumerate(_SECTIONS.values()):
        name = json.dumps(section.name)
        yield f'{"," if number else ""}\n{name}: '.encode()
        if not section.many:
            yield _dumps(section.rows(customer))
            continue
        yield from _array(section.rows(customer))
    yield b"\n}\n"


def _array(rows: Iterable[dict]) -> Iterator[bytes]:
    yield b"["
    for number, row in enumerate(rows):
        yield (b",\n" if number else b"\n") + _dumps(row)
    yield b"\n]"


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, default=_json_default,
                      cls=DeepSafeEncoder).encode()


def _json_default(value: Any):
    """Times as the API writes them (ISO 8601, UTC as Z); money as a decimal string."""
    if isinstance(value, datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
