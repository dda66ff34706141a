"""Checking a big file's lines on every core: the importing process reads the file's records
and streams pieces of staged rows into the database; helper processes, forked from it, read each
record as an item, check it and build its staged row. Order is kept.

Helpers are forked by hand rather than through multiprocessing's pools, which refuse to start
in a daemonic process such as a Celery worker's. They inherit the code and the check (which
cannot be pickled), never touch the database (the importing process alone holds the
connection), and leave through os._exit, which closes nothing they inherited. Each helper has
at most one chunk in hand, sent through a pipe, so neither side can block the other."""

import os
import traceback
from collections.abc import Callable, Iterable, Iterator
from itertools import cycle, islice
from multiprocessing.connection import Connection, Pipe

from onboarding.staging import copy_text

CHUNK = 2000  # records a helper checks at a time: big enough that passing them costs little
PARALLEL_FROM_BYTES = 8 << 20  # a smaller file is checked here: forking would cost more
Piece = tuple[list[tuple] | str, int, int]  # (rows, or their COPY text), lines, refused


class HelperFailed(Exception):
    """A helper stopped (killed, or a bug while checking): the import stops, unwritten."""


def checked(records: Iterable, check: Callable[..., tuple], *, size: int,
            as_copy_text: bool) -> Iterator[Piece]:
    """Pieces of ``check(record)`` for every record, in order. On forked helpers when the
    file is big, the machine has cores to spare and the rows may come as COPY text (a string
    passes between processes for less than rows)."""
    helpers = _helpers()
    if size < PARALLEL_FROM_BYTES or not as_copy_text or helpers < 2:
        for chunk in _chunks(records):
            yield _piece([check(record) for record in chunk], as_text=False)
        return
    pipes: list[tuple[Connection, int]] = []
    try:
        for _ in range(helpers):
            pipes.append(_fork_helper(check, pipes))
        yield from _round_robin(_chunks(records), pipes)
    finally:
        for pipe, _ in pipes:
            pipe.close()  # a helper reads the end of its pipe and leaves
        for _, pid in pipes:
            os.waitpid(pid, 0)


def _round_robin(chunks: Iterator[list], pipes: list) -> Iterator[Piece]:
    """Chunk n goes to helper n mod k and its piece comes back in the same turn order."""
    busy = []  # helpers with a chunk in hand, oldest first
    for chunk, (pipe, _) in zip(chunks, cycle(pipes), strict=False):
        if len(busy) == len(pipes):
            yield _received(busy.pop(0))
        pipe.send(chunk)
        busy.append(pipe)
    for pipe in busy:
        yield _received(pipe)


def _received(pipe: Connection) -> Piece:
    try:
        kind, payload = pipe.recv()
    except EOFError:
        raise HelperFailed("A helper checking the file stopped.") from None
    if kind == "failed":
        raise HelperFailed(f"A helper checking the file failed:\n{payload}")
    return payload


def _fork_helper(check: Callable, forked: list) -> tuple[Connection, int]:
    ours, theirs = Pipe()
    pid = os.fork()
    if pid == 0:  # the helper: it keeps only its own end, or the others' pipes never close
        ours.close()
        for pipe, _ in forked:
            pipe.close()
        _serve(theirs, check)
    theirs.close()
    return ours, pid


def _serve(pipe: Connection, check: Callable) -> None:
    code = 0
    try:
        while True:
            try:
                chunk = pipe.recv()
            except EOFError:  # the importing process is done, or gone
                break
            try:
                pipe.send(("piece", _piece([check(record) for record in chunk], as_text=True)))
            except Exception:
                pipe.send(("failed", traceback.format_exc()))
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _piece(rows: list[tuple], *, as_text: bool) -> Piece:
    refused = sum(row[-1] is not None for row in rows)  # a staged row ends with its error
    return (copy_text(rows) if as_text else rows), len(rows), refused


def _chunks(records: Iterable) -> Iterator[list]:
    records = iter(records)
    while chunk := list(islice(records, CHUNK)):
        yield chunk


def _helpers() -> int:
    if not hasattr(os, "fork"):
        return 1
    return max(1, min(os.cpu_count() or 1, 4))
