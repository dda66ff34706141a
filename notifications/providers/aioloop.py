"""One asyncio event loop per process, running in a daemon thread, for async provider clients.

aioapns and firebase-admin's httpx client keep HTTP/2 connections that belong to the loop which
opened them. ``asyncio.run()`` per batch would close that loop and strand them (and reconnecting
to APNs for every batch is what Apple asks senders not to do), so synchronous callers such as
Celery tasks hand their coroutines to this long-lived loop instead."""

import asyncio
import os
import queue
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

STREAM_POLL_SECONDS = 0.5  # how often a waiting caller checks that the coroutine still runs

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on the process loop and wait for its result from this thread.

    The coroutine must bound its own waits (every provider call has a timeout)."""
    return asyncio.run_coroutine_threadsafe(coroutine, _process_loop()).result()


def stream(produce: Callable[[Callable[[T], None]], Coroutine[Any, Any, None]],
           count: int) -> Iterator[list[T]]:
    """Run ``produce(put)`` on the process loop and yield the ``count`` items it puts, each
    time all those that arrived since the last yield. Closing the iterator early cancels it.

    Items put in one turn of the loop (answers read from the same select()) cross to the
    caller's thread together: one wake-up of the caller for all of them, not one each."""
    arrived: queue.SimpleQueue[list[T]] = queue.SimpleQueue()
    pending: list[T] = []

    def hand_over() -> None:
        arrived.put(pending[:])
        pending.clear()

    def put(item: T) -> None:  # on the loop's thread
        if not pending:
            asyncio.get_running_loop().call_soon(hand_over)
        pending.append(item)

    future = asyncio.run_coroutine_threadsafe(produce(put), _process_loop())
    try:
        while count > 0:
            try:
                part = arrived.get(timeout=STREAM_POLL_SECONDS)
            except queue.Empty:
                if not future.done():
                    continue
                future.result()  # raises what the coroutine raised
                if arrived.empty():  # it may have put its last items just before it ended
                    raise RuntimeError(f"the coroutine ended {count} items short") from None
                continue
            while True:
                try:
                    part += arrived.get_nowait()
                except queue.Empty:
                    break
            count -= len(part)
            yield part
    finally:
        future.cancel()


def _process_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            thread = threading.Thread(target=_loop.run_forever, name="push-providers", daemon=True)
            thread.start()
        return _loop


def _forget_after_fork() -> None:
    # A forked worker inherits the loop object but not its thread: start a fresh one on demand.
    global _loop, _lock
    _loop, _lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
