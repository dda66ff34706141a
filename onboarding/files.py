"""Reading customer and event files, CSV or JSON Lines, a line at a time: whatever the file
holds, memory stays bounded (a line over MAX_LINE_BYTES is refused unread), every problem is
reported with its line number, and each good line becomes a raw item (onboarding.items).

CSV columns (see the README): the item's fields, ``attr.<key>`` / ``prop.<key>`` (with an
optional type, ``attr.visits:number``), ``device_<field>`` for one device per line, and the
export-only columns, which are read past. A mapping (``--map``) renames another system's
columns, maps its values and fills defaults before any of that."""

import csv
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import NamedTuple

from journeyhub.spreadsheet import cell_unescaped
from onboarding.items import DEVICE_FIELDS, EVENT_FIELDS, FILE_FIELDS

MAX_LINE_BYTES = 1 << 20  # a customer fits in far less; a longer line is refused, not read
MAX_COLUMNS = 1000  # beyond this a header is not a customer file
TOPIC_SEPARATORS = re.compile(r"[\s,;|]+")
NO_TOPICS = "-"  # an opted_out_topics cell that opts the customer back in to every topic
TRUE_WORDS = frozenset({"1", "true", "yes", "y", "t"})
FALSE_WORDS = frozenset({"0", "false", "no", "n", "f"})
ATTRIBUTE_TYPES = ("text", "number", "boolean", "json")
# Written by our exports for the reader; a file that carries them back imports unchanged.
DEVICE_PREFIX = "device_"
PRESETS = Path(__file__).parent / "maps"  # mappings for other systems' exports, by name
PRESET_NAME = re.compile(r"^[a-z0-9_-]+$")


@dataclass(frozen=True)
class Schema:
    """The columns a kind of file may have."""

    fields: frozenset[str]  # columns named as the item's fields
    key: str  # the column every file needs
    nested: tuple[str, str]  # ("attr.", "attributes"): typed columns of one object field
    devices: bool = False  # device_<field> columns
    export_only: frozenset[str] = frozenset()  # written by our exports, read past


CUSTOMERS = Schema(
    fields=FILE_FIELDS - {"devices"}, key="external_id", nested=("attr.", "attributes"),
    devices=True,
    export_only=frozenset({"stage_changed_at", "last_seen_at", "updated_at", "bucket",
                           "referred_by"}),
)
EVENTS = Schema(fields=EVENT_FIELDS, key="customer_id", nested=("prop.", "properties"),
                export_only=frozenset({"id", "received_at"}))
JSON_OBJECT_FIELDS = ("attributes", "properties")


class FileProblem(Exception):
    """The file as a whole cannot be read (its header, its format): nothing is imported."""


@dataclass
class Mapping:
    """How another system's file reads as ours (``--map FILE``, JSON):
    ``{"columns": {"theirs": "ours" or null to skip}, "values": {"ours": {"their value":
    "our value"}}, "defaults": {"ours": "value for an empty or missing cell"}}``.

    One of their columns may feed several of ours (``"device_type": ["device_kind",
    "device_platform"]``, each with its own values), and a value mapped to null is left out as
    an empty cell is; on a device column it leaves the line without its device (a kind of
    subscription that cannot move), and the customer on the line is still brought in."""

    columns: dict[str, str | list[str] | None] = field(default_factory=dict)
    values: dict[str, dict[str, str | None]] = field(default_factory=dict)
    defaults: dict[str, object] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str) -> "Mapping":
        """A mapping file, or a preset shipped in onboarding/maps/ by its name (``onesignal``,
        ``firebase``)."""
        preset = PRESETS / f"{path}.json"
        if not os.path.exists(path) and PRESET_NAME.match(path) and preset.is_file():
            path = str(preset)
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError) as error:
            raise FileProblem(f"The mapping file {path} cannot be read: {error}") from error
        if not isinstance(data, dict) or set(data) - {"columns", "values", "defaults"}:
            raise FileProblem('A mapping file is a JSON object with "columns", "values" and '
                              '"defaults".')
        columns, values, defaults = (data.get(k, {}) for k in ("columns", "values", "defaults"))
        if not all(isinstance(part, dict) for part in (columns, values, defaults)):
            raise FileProblem('"columns", "values" and "defaults" are JSON objects.')
        if problem := _mapping_problem(columns, values):
            raise FileProblem(f"The mapping file {path}: {problem}")
        return cls(columns=columns, values=values, defaults=defaults)

    def targets(self, column: str) -> list[str]:
        """Our columns that their ``column`` feeds: itself when unmapped, none when skipped."""
        target = self.columns.get(column, column)
        if target is None:
            return []
        return target if isinstance(target, list) else [target]

    def value(self, column: str, cell):
        if isinstance(cell, str) and column in self.values:
            return self.values[column].get(cell, cell)
        return cell


def _mapping_problem(columns: dict, values: dict) -> str | None:
    for theirs, ours in columns.items():
        if ours is None or isinstance(ours, str):
            continue
        if not (isinstance(ours, list) and ours and all(isinstance(n, str) for n in ours)):
            return (f'"columns": {theirs!r} maps to a column name, a list of them, or null '
                    "to skip it.")
    for ours, table in values.items():
        if not isinstance(table, dict) or not all(
                value is None or isinstance(value, str) for value in table.values()):
            return (f'"values": {ours!r} maps their values to ours, as text (or to null, to '
                    "leave them out).")
    return None


class Line(NamedTuple):
    """A line (a record) of a file: its item, or why it is refused. A tuple, so that passing
    many to a helper process costs little."""

    number: int
    item: dict | None = None
    error: str | None = None
    raw: list[str] | str | None = None  # a record not read as an item yet: cells, or JSON


def file_format(path: str, given: str | None = None) -> str:
    if given:
        if given not in ("csv", "jsonl"):
            raise FileProblem(f"Unknown format {given!r}: csv or jsonl.")
        return given
    lowered = path.lower()
    if lowered.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if lowered.endswith((".csv", ".txt")):
        return "csv"
    raise FileProblem("Name the format (csv or jsonl): the file name does not say.")


def physical_lines(handle) -> Iterator[tuple[int, str | None, str | None]]:
    """(number, text, problem) per line of a binary file; a line too long or not UTF-8 comes
    with its problem and no text, and is never held in memory whole."""
    number = 0
    while True:
        chunk = handle.readline(MAX_LINE_BYTES + 1)
        if not chunk:
            return
        number += 1
        if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
            while chunk and not chunk.endswith(b"\n"):  # skip the rest of it
                chunk = handle.readline(MAX_LINE_BYTES)
            yield number, None, f"The line is longer than {MAX_LINE_BYTES:,} bytes."
            continue
        if number == 1 and chunk.startswith(b"\xef\xbb\xbf"):
            chunk = chunk[3:]
        try:
            yield number, chunk.decode("utf-8"), None
        except UnicodeDecodeError as error:
            yield number, None, (f"Not UTF-8 (byte 0x{chunk[error.start]:02x} at position "
                                 f"{error.start + 1}); save the file as UTF-8.")


def jsonl_lines(handle, mapping: Mapping | None = None, schema: Schema = CUSTOMERS
                ) -> Iterator[Line]:
    source = JsonlSource(handle, mapping, schema)
    for record in source.records():
        yield source.complete(record)


class JsonlSource:
    """A JSON Lines file in two steps: ``records`` reads its lines in order (cheap), and
    ``complete`` reads one as an item (the costly part, which may run in another process)."""

    def __init__(self, handle, mapping: Mapping | None = None, schema: Schema = CUSTOMERS):
        self.handle, self.mapping, self.schema = handle, mapping, schema

    def records(self) -> Iterator[Line]:
        for number, text, problem in physical_lines(self.handle):
            if problem:
                yield Line(number, error=problem)
            elif text.strip():
                yield Line(number, raw=text)

    def complete(self, line: Line) -> Line:
        if line.raw is None:
            return line
        try:
            raw = json.loads(line.raw, parse_constant=_refuse_constant)
        except RecursionError:
            return Line(line.number, error="The JSON is nested too deeply.")
        except ValueError as error:
            return Line(line.number, error=f"Not valid JSON: {error}.")
        if not isinstance(raw, dict):
            return Line(line.number, error="Each line must be one JSON object.")
        for name in self.schema.export_only & raw.keys():
            del raw[name]
        return Line(line.number, item=_mapped_object(raw, self.mapping) if self.mapping else raw)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _mapped_object(raw: dict, mapping: Mapping) -> dict:
    item = {}
    for key, value in raw.items():
        for target in mapping.targets(key):
            mapped = mapping.value(target, value)
            if mapped is not None or value is None:  # mapped to null: left out
                item[target] = mapped
    for key, value in mapping.defaults.items():
        item.setdefault(key, value)
    return item


class CsvColumns:
    """What each column of a CSV header means, checked once for the file."""

    def __init__(self, header: list[str], mapping: Mapping | None, schema: Schema = CUSTOMERS):
        self.mapping, self.schema = mapping or Mapping(), schema
        self.names: list[str | None] = []
        copies: list[tuple[int, str]] = []  # (column, another of ours it feeds)
        problems = []
        seen = set()
        for index, raw in enumerate(header):
            names = self.mapping.targets(raw.strip())
            if not names:
                self.names.append(None)
                continue
            for name in names:
                if name in seen:
                    problems.append(f"column {name!r} appears twice")
                seen.add(name)
                problem = _column_problem(name, schema)
                if problem:
                    problems.append(problem)
            kept = [None if name in schema.export_only else name for name in names]
            self.names.append(kept[0])
            copies += [(index, name) for name in kept[1:] if name is not None]
        if schema.key not in seen and schema.key not in self.mapping.defaults:
            problems.append(f"there is no {schema.key} column")
        if problems:
            raise FileProblem("Line 1 (the header): " + "; ".join(problems) + ".")
        self.plan = [_planned(name, schema) for name in self.names]
        self.copies = [(index, _planned(name, schema)) for index, name in copies]

    def item(self, cells: list[str]) -> dict:
        """The raw item of one line (its cells already counted against the header). The
        hot path of a big import: one pass over the cells, the column's meaning decided
        once per file (self.plan)."""
        item: dict = {}
        device: dict = {}
        nested: dict = {}
        values = self.mapping.values
        pairs = zip(self.plan, cells, strict=False)
        if self.copies:
            pairs = chain(pairs, ((plan, cells[index]) for index, plan in self.copies
                                  if index < len(cells)))
        without_device = False
        for (where, name, key, kind), cell in pairs:
            if where is None:
                continue
            cell = cell.strip()
            if not cell:
                continue  # leaves the stored value alone (consent too: never a silent opt-in)
            if cell[0] == "'":  # our exports' way of keeping a formula-like value text
                cell = cell_unescaped(cell)
            if values and name in values:
                cell = values[name].get(cell, cell)
                if cell is None:  # mapped to null: left out, and a device with it
                    without_device = without_device or where == "device"
                    continue
            if where == "device":
                device[key] = cell
            elif where == "nested":
                nested[key] = _typed(cell, kind, name)
            else:
                _cell(item, name, cell)
        if nested:
            field_name = self.schema.nested[1]
            item[field_name] = {**item.get(field_name, {}), **nested}
        if without_device:
            device = {}
        if self.mapping.defaults:
            self._defaults(item, device)
        if device:
            item["devices"] = [device]
        return item

    def _defaults(self, item: dict, device: dict) -> None:
        for name, value in self.mapping.defaults.items():
            if not name.startswith(DEVICE_PREFIX):
                item.setdefault(name, value)
            elif device:  # a default completes a line's device; it makes none on its own
                device.setdefault(name[len(DEVICE_PREFIX):], value)


def _planned(name: str | None, schema: Schema) -> tuple:
    """(where, column, key, type) of a column: where its cells go."""
    if name is None:
        return None, None, None, None
    prefix = schema.nested[0]
    if schema.devices and name.startswith(DEVICE_PREFIX):
        return "device", name, name[len(DEVICE_PREFIX):], None
    if name.startswith(prefix):
        key, _, kind = name[len(prefix):].partition(":")
        return "nested", name, key, kind
    return "field", name, name, None


def _column_problem(name: str, schema: Schema) -> str | None:
    if name in schema.fields or name in schema.export_only:
        return None
    if (schema.devices and name.startswith(DEVICE_PREFIX)
            and name[len(DEVICE_PREFIX):] in DEVICE_FIELDS):
        return None
    prefix = schema.nested[0]
    if name.startswith(prefix):
        key, _, kind = name[len(prefix):].partition(":")
        if not key:
            return f"column {name!r} names no key"
        if kind and kind not in ATTRIBUTE_TYPES:
            return f"column {name!r}: the type is one of {', '.join(ATTRIBUTE_TYPES)}"
        return None
    return f"unknown column {name[:60]!r}"


class CellProblem(ValueError):
    def __init__(self, column: str, reason: str):
        super().__init__(f"{column}: {reason}")


def _cell(item: dict, name: str, cell: str) -> None:
    if name == "opted_out_topics":
        item[name] = [] if cell == NO_TOPICS else [
            key for key in TOPIC_SEPARATORS.split(cell) if key]
    elif name in JSON_OBJECT_FIELDS:
        try:
            value = json.loads(cell, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            raise CellProblem(name, "not a JSON object, e.g. {\"city\": \"Lisbon\"}.") from None
        item[name] = value
    elif name == "push_opt_out":
        item[name] = _yes_no(cell, name)
    else:
        item[name] = cell


def _yes_no(cell: str, column: str) -> bool:
    word = cell.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise CellProblem(column, f"{cell[:40]!r} is not a yes/no value: use 1/0, true/false or "
                              "yes/no.")


def _typed(cell: str, kind: str, column: str):
    if kind in ("", "text"):
        return cell
    if kind == "boolean":
        return _yes_no(cell, column)
    try:
        value = json.loads(cell, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        value = None if kind == "number" else ValueError
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise CellProblem(column, f"{cell[:40]!r} is not a number.")
    if value is ValueError:
        raise CellProblem(column, "not valid JSON.")
    return value


def csv_lines(handle, mapping: Mapping | None = None, schema: Schema = CUSTOMERS
              ) -> Iterator[Line]:
    """Lines of a CSV file as raw items. The first line is the header; a quoted cell may
    span lines, and a line is numbered where its record starts."""
    source = CsvSource(handle, mapping, schema)
    for record in source.records():
        yield source.complete(record)


class CsvSource:
    """A CSV file in two steps, as JsonlSource: the header is read and checked at once
    (FileProblem), then ``records`` gives each record's cells and ``complete`` reads them."""

    def __init__(self, handle, mapping: Mapping | None = None, schema: Schema = CUSTOMERS):
        self.feed = _CsvFeed(handle)
        self.reader = csv.reader(self.feed)
        try:
            header = next(self.reader)
        except StopIteration:
            raise FileProblem("The file is empty.") from None
        except csv.Error as error:
            raise FileProblem(f"Line 1 (the header): {error}.") from error
        if self.feed.problem:
            raise FileProblem(f"Line 1 (the header): {self.feed.problem}")
        if len(header) > MAX_COLUMNS:
            raise FileProblem(f"Line 1 (the header) has {len(header):,} columns; a customer "
                              f"file has at most {MAX_COLUMNS}.")
        self.columns, self.width = CsvColumns(header, mapping, schema), len(header)

    def records(self) -> Iterator[Line]:
        feed = self.feed
        while True:
            start = feed.number + 1
            try:
                cells = next(self.reader)
            except StopIteration:
                return
            except csv.Error as error:
                feed.problem = None
                yield Line(start, error=f"Not valid CSV: {error}.")
                continue
            if feed.problem:
                yield Line(feed.problem_line, error=feed.problem)
                feed.problem = None
            elif len(cells) > self.width:
                yield Line(start, error=f"The line has {len(cells):,} cells; the header has "
                                        f"{self.width:,}.")
            elif cells and any(cell.strip() for cell in cells):
                yield Line(start, raw=cells)

    def complete(self, line: Line) -> Line:
        if line.raw is None:
            return line
        try:
            return Line(line.number, item=self.columns.item(line.raw))
        except CellProblem as problem:
            return Line(line.number, error=str(problem))


def file_source(handle, file_format: str, mapping: Mapping | None = None,
                schema: Schema = CUSTOMERS) -> CsvSource | JsonlSource:
    return (CsvSource if file_format == "csv" else JsonlSource)(handle, mapping, schema)


class _CsvFeed:
    """Text lines for csv.reader from physical_lines; a line with a problem is handed on as
    an empty line and the problem kept, for the reader's caller to report."""

    def __init__(self, handle):
        self.lines = physical_lines(handle)
        self.number, self.problem, self.problem_line = 0, None, 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        number, text, problem = next(self.lines)
        self.number = number
        if problem:
            self.problem, self.problem_line = problem, number
            return "\n"
        return text
