"""The refused lines of an import as a CSV to download: line, reason, then the line as it was in
the file (its cells for a CSV, its text for JSON Lines). The file is read once more alongside
the refusals, both in line order, so memory stays bounded at any size."""

import csv
from collections.abc import Iterable, Iterator

from onboarding.files import physical_lines

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run such a cell


def rejects_write(*, source: str, file_format: str, refusals: Iterable[tuple[int, str]],
                  target: str) -> int:
    """Write ``target`` from the (line, reason) ``refusals``, in line order. Returns the rows
    written. A line the reader could not split (not UTF-8, too long) comes without cells."""
    written = 0
    with open(source, "rb") as handle, open(target, "w", newline="", encoding="utf-8") as out:
        records = _csv_records(handle) if file_format == "csv" else _text_records(handle)
        header = next(records, (1, []))[1] if file_format == "csv" else ["original line"]
        writer = csv.writer(out)
        writer.writerow(_safe(["line", "reason", *header]))
        at, cells = 0, []
        for line, reason in refusals:
            while at < line:
                at, cells = next(records, (float("inf"), []))
            writer.writerow(_safe([str(line), reason, *(cells if at == line else [])]))
            written += 1
    return written


def _safe(cells: list[str]) -> list[str]:
    """Cells a spreadsheet would read as a formula get a leading ', as our exports write them
    (and as import_customers reads them back)."""
    return ["'" + cell if cell.startswith(FORMULA_START) else cell for cell in cells]


def _text_records(handle) -> Iterator[tuple[int, list[str]]]:
    for number, text, _problem in physical_lines(handle):
        yield number, [] if text is None else [text.rstrip("\r\n")]


def _csv_records(handle) -> Iterator[tuple[int, list[str]]]:
    """(line where the record starts, cells), numbered as onboarding.files numbers them."""
    lines = _NumberedLines(handle)
    reader = csv.reader(lines)
    while True:
        start = lines.number + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error:
            cells = []
        yield start, cells


class _NumberedLines:
    """Text lines for csv.reader, remembering the last line's number; a line that cannot be
    read as text stands as an empty one."""

    def __init__(self, handle):
        self.lines, self.number = physical_lines(handle), 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        self.number, text, _problem = next(self.lines)
        return "\n" if text is None else text
