"""A stream's endpoints from what a caller passes: a URL, a transport object, or plain Python.

:func:`adcore.open_stream` takes, for its source, sink, event sink and dead letters, either a
URL (opened through the messaging port: ``-``, ``file://...``, ``kafka://...``) or an object.
This module turns each into the port's :class:`~adcore.messaging.Source` /
:class:`~adcore.messaging.Sink` and says who owns it, because the rule is Python's usual one:
**a stream closes what it opened, and only that** (a file object or a transport the caller
passed stays open, as ``logging.StreamHandler`` leaves its stream open).

Plain Python is welcome, so a test or a notebook needs no transport at all:

- a source may be any object with ``poll`` (the port's protocol), an open file (read as
  ``-`` reads stdin), a list or tuple of items, or any other iterable (read on a thread, so
  it may block). Items are JSON lines
  (``bytes``/``str``), :class:`~adcore.messaging.Message` objects, or records given as
  ``dict``/``list`` (or a numpy row), which are encoded to JSON here;
- a sink may be an open file (one JSON line per document, as ``-`` writes stdout), any other
  object with ``write`` (the port's protocol; a ``write(value)``-only one is adapted), or a
  ``list``, which receives one parsed JSON value per output record, event or dead letter.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from adcore.errors import ParameterError
from adcore.io import jsonio
from adcore.messaging import Item, Message, Sink, Source, as_sink, as_source, open_sink, open_source

_LINE_TYPES = (bytes, str, Message)


def as_line(item: Any) -> Item:
    """One item as the decoder reads it: lines and messages as they are, records as JSON."""
    if isinstance(item, _LINE_TYPES):
        return item  # type: ignore[no-any-return]
    if isinstance(item, (Mapping, list, tuple)):
        return jsonio.dumps(dict(item) if isinstance(item, Mapping) else list(item))
    tolist = getattr(item, "tolist", None)  # a numpy row
    if callable(tolist):
        return jsonio.dumps(tolist())
    return item  # type: ignore[no-any-return]  # the decoder names what it is as a malformed line


class SequenceSource:
    """A list or tuple of items as a source: handed out in order, no thread, ended at its end."""

    def __init__(self, items: Sequence[Any]) -> None:
        self._items = items
        self._pos = 0

    def poll(self, max_records: int, timeout: float) -> list[Item] | None:
        if self._pos >= len(self._items):
            return None
        chunk = self._items[self._pos : self._pos + max_records]
        self._pos += len(chunk)
        return [as_line(item) for item in chunk]

    def commit(self) -> None:
        """Nothing to acknowledge: the items are the caller's."""

    def close(self) -> None:
        """Nothing to release."""


class ListSink:
    """Appends one parsed JSON value per written document to a caller's list."""

    def __init__(self, target: list[Any]) -> None:
        self.target = target

    def write(self, value: bytes | str, metadata: Mapping[str, Any] | None = None) -> None:
        self.target.append(jsonio.loads(value))

    def write_many(self, values: list[bytes], metadata: list[Any]) -> None:
        self.target.extend(map(jsonio.loads, values))

    def flush(self) -> None:
        """Everything is in the list already."""

    def close(self) -> None:
        """The list stays the caller's."""


def _lines(iterable: Iterable[Any]) -> Iterator[Item]:
    for item in iterable:
        yield as_line(item)


def source_from(value: Any, *, host: Any = None) -> tuple[Source, bool]:
    """``(source, opened_here)`` for a URL, a source object or an iterable of items."""
    if isinstance(value, str):
        return open_source(value, host=host), True
    if isinstance(value, (bytes, bytearray)):
        raise ParameterError(
            "a stream source is a URL (str), a source object or an iterable of lines, not bytes"
        )
    if callable(getattr(value, "poll", None)):
        return as_source(value), False
    if isinstance(value, io.IOBase):
        from adcore.builtin.messaging import LineSource

        return LineSource(value, getattr(value, "name", type(value).__name__)), False
    if isinstance(value, (list, tuple)):
        return SequenceSource(value), False
    if isinstance(value, Iterable):
        return as_source(_lines(value)), False
    raise ParameterError(
        f"{type(value).__name__} is not a stream source: give a URL, an object with poll(), or an iterable"
    )


def limit_record_size(source: Any, max_record_bytes: int) -> None:
    """Tell a source that buffers lines itself the longest record the stream takes.

    Optional for a transport (a source with a ``max_record_bytes`` attribute gets it): the
    service dead-letters longer records from any source, but only the source can avoid
    holding a whole endless line in memory to hand it out (the core's stdin/file source).
    """
    if hasattr(source, "max_record_bytes"):
        source.max_record_bytes = max_record_bytes


def sink_from(value: Any, *, what: str = "sink", host: Any = None) -> tuple[Sink, bool]:
    """``(sink, opened_here)`` for a URL, a sink object or a list."""
    if isinstance(value, str):
        return open_sink(value, host=host), True
    if isinstance(value, list):
        return ListSink(value), False
    if isinstance(value, io.IOBase):
        from adcore.builtin.messaging import LineSink

        return LineSink(value, getattr(value, "name", type(value).__name__)), False
    if callable(getattr(value, "write", None)):
        return as_sink(value), False
    raise ParameterError(
        f"{type(value).__name__} cannot be a stream {what}: give a URL, an object with write(), or a list"
    )
