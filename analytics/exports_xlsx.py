"""XLSX files written row by row with openpyxl's write-only workbook (constant memory)."""

import json
from collections.abc import Iterable
from datetime import UTC, datetime

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE


def workbook_write(path: str, *, title: str, columns: Iterable[str], rows: Iterable[Iterable],
                   json_columns: frozenset[str] = frozenset()) -> int:
    """Write ``rows`` under a header of ``columns`` to ``path``; returns the rows written."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title[:31])  # Excel's limit on sheet names
    columns = list(columns)
    sheet.append(columns)
    kinds = [_kind(column, json_columns) for column in columns]
    written = 0
    for row in rows:
        sheet.append([_cell(sheet, value, kind) for value, kind in zip(row, kinds, strict=True)])
        written += 1
    workbook.save(path)
    return written


def _kind(column: str, json_columns: frozenset[str]) -> str:
    if column in json_columns:
        return "json"
    return "time" if column.endswith("_at") else "value"


def _cell(sheet, value, kind: str):
    if value is None:
        return None
    if kind == "json" and not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    elif kind == "time" and isinstance(value, str):
        value = datetime.fromisoformat(value)  # exports give times as ISO 8601 text
    if isinstance(value, datetime):
        # Excel has no time zones: times are written in UTC, as the header's "_at" promises.
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
        if value.startswith("="):
            # openpyxl would store it as a formula: data from customers must stay text.
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"
            return cell
    return value
