"""Read the next chunk of a file while the current one is scored.

``adcore score`` alternates reading (Arrow's Parquet or CSV decoding, the float matrix and its
checks) with scoring and writing. Both halves spend most of their time in C code that releases
the GIL, so a thread that reads one chunk ahead lets two cores work at once: on a 2,000,000 x 20
Parquet file the reading half is about a third of the run. Memory grows by the chunks in flight
(``depth`` + 1 at most), not with the file.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_DONE = object()


class _Failed:
    """An exception raised by the source, carried to the consumer to be raised there."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(source: Iterator[T], depth: int = 1) -> Iterator[T]:
    """``source``'s items, produced by a background thread at most ``depth`` items ahead.

    Items and exceptions arrive in order: an error the source raises is raised by ``next()``
    at its place, with its own type and traceback. Closing the returned generator (a consumer
    that stops early, or fails) stops the thread and closes ``source`` in it, so a file the
    source holds open is closed before ``close()`` returns.
    """
    items: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        """Hand one item over; False when the consumer has gone (stop set)."""
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in source:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as error:  # handed to the consumer, raised there
            put(_Failed(error))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="adcore-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()
