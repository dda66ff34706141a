"""Checking a big file's lines on every core: the importing process reads the file's records
and streams pieces of staged rows into the database, forked helpers read each record as an
item, check it and build its staged row. Order is kept.

Helpers are forked (they inherit the code and the check, which cannot be pickled) and never
touch the database: the importing process alone holds the connection, and a forked helper
leaves through os._exit, which closes nothing it inherited."""

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from onboarding.staging import copy_text

CHUNK = 2000  # records a helper checks per task: big enough that passing them costs little
PARALLEL_FROM_BYTES = 8 << 20  # a smaller file is checked here: forking would cost more
_check: Callable | None = None  # the check of the running import, inherited by the helpers


def checked(records: Iterable, check: Callable[..., tuple], *, size: int,
            as_copy_text: bool) -> Iterator[tuple[list[tuple] | str, int, int]]:
    """Pieces ``(rows, lines, refused)`` of ``check(record)`` for every record, in order.
    On forked helpers when the file is big and the machine has cores to spare; their rows
    come as COPY text when ``as_copy_text`` (a string passes between processes for less)."""
    if size < PARALLEL_FROM_BYTES or not as_copy_text or not _can_fork():
        for chunk in _chunks(records):
            yield _piece([check(record) for record in chunk], as_text=False)
        return
    global _check
    _check = check
    context = multiprocessing.get_context("fork")
    with context.Pool(_helpers()) as pool:
        yield from pool.imap(_check_chunk, _chunks(records))
    _check = None


def _check_chunk(chunk: list) -> tuple[str, int, int]:
    return _piece([_check(record) for record in chunk], as_text=True)


def _piece(rows: list[tuple], *, as_text: bool) -> tuple[list[tuple] | str, int, int]:
    refused = sum(row[-1] is not None for row in rows)  # a staged row ends with its error
    return (copy_text(rows) if as_text else rows), len(rows), refused


def _chunks(records: Iterable) -> Iterator[list]:
    records = iter(records)
    while chunk := list(islice(records, CHUNK)):
        yield chunk


def _helpers() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods() and (os.cpu_count() or 1) > 1
