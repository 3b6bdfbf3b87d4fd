"""The messaging port: what a stream source and sink are, and how a URL becomes one.

Transports (stdin/stdout, files, Kafka...) are plugins registered through
``register_messaging``; this module is what the streaming service and every transport
share, so a third-party transport only has to satisfy two small protocols:

- a :class:`Source` hands out raw records with ``poll(max_records, timeout)`` and is told
  with ``commit()`` that everything it handed out so far has been written *and flushed* to
  the sink (at-least-once: a Kafka source commits its offsets there; stdio and files do
  nothing). ``poll`` returns within ``timeout`` seconds, which is what lets the service
  bound latency and react to SIGTERM without a thread per transport.
- a :class:`Sink` takes ``write(value, metadata)`` per output record, ``flush()`` once per
  micro-batch (before the source commits) and ``close()``. A sink may also offer
  ``write_many(values, metadata)`` (lists, one entry per record) to take a whole batch
  in one call; the service uses it when present.
- optional extras, each used when present (adcore-kafka has them all): ``Source.retain(items)``
  returns the items still the source's to process (called on each batch before scoring:
  a Kafka rebalance may have revoked partitions while it was collected);
  ``Source.dead_letter`` is a sink for malformed records when none was given;
  ``Sink.write_event(payload, event)`` receives events with their object (for keys and
  headers) and ``Sink.write_malformed(item)`` dead letters with their original bytes.

A polled item is ``bytes`` or ``str`` (one JSON document) or a :class:`Message` carrying
``metadata`` as well (topic, partition, offset, key...). The service copies that metadata
into the output record (``"_meta"``) and hands it to ``Sink.write``, so a Kafka sink can
keep the input's key and partitioning. Decoding and malformed-record handling are the
service's job, so every transport behaves the same.
"""

from __future__ import annotations

import inspect
import queue
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlparse

from adcore.errors import ParameterError

STDIO = "stdio"


@dataclass(frozen=True, slots=True)
class Message:
    """One raw record plus transport metadata (JSON-serialisable: it is copied to the output).

    ``value`` is one JSON document (UTF-8 bytes or text, no trailing newline). ``metadata``
    is what the transport knows about it, e.g. ``{"topic": "payments", "partition": 3,
    "offset": 1042, "key": "c-17"}``; ``None`` when there is nothing to say.
    """

    value: bytes | str
    metadata: Mapping[str, Any] | None = None


Item = bytes | str | Message


@runtime_checkable
class Source(Protocol):
    """Where raw records come from."""

    def poll(self, max_records: int, timeout: float) -> list[Item] | None:
        """Up to ``max_records`` items, waiting at most ``timeout`` seconds for the first.

        Return ``[]`` when nothing arrived in time and ``None`` once the stream has ended
        (EOF); never block longer than ``timeout``.
        """
        ...

    def commit(self) -> None:
        """Everything polled so far is durably written downstream (a no-op without offsets)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Sink(Protocol):
    """Where output records (and events, and dead letters) go."""

    def write(self, value: bytes | str, metadata: Mapping[str, Any] | None = None) -> None:
        """Queue one record: ``value`` is one JSON document without a newline."""
        ...

    def flush(self) -> None:
        """Deliver everything written so far (called once per micro-batch, before commit)."""
        ...

    def close(self) -> None: ...


# ------------------------------------------------------------------------------- adapters
class ThreadedSource:
    """Gives a plain iterable of lines (a minimal third-party source) ``poll`` semantics.

    A daemon thread iterates the wrapped object into a bounded queue, so ``poll`` can time
    out while the iterator blocks; the bound gives back-pressure on fast producers.
    """

    _END = object()

    def __init__(self, iterable: Iterable[Item], *, max_queued: int = 10_000) -> None:
        self._inner = iterable
        self._queue: queue.Queue[Any] = queue.Queue(max_queued)
        self._thread: threading.Thread | None = None
        self._ended = False

    def _pump(self) -> None:
        try:
            for item in self._inner:
                self._queue.put(item)
        except BaseException as exc:  # surfaced to the caller by poll
            self._queue.put(exc)
        self._queue.put(self._END)

    def poll(self, max_records: int, timeout: float) -> list[Item] | None:
        if self._ended:
            return None
        if self._thread is None:
            self._thread = threading.Thread(target=self._pump, name="adcore-source", daemon=True)
            self._thread.start()
        out: list[Item] = []
        deadline = time.monotonic() + max(timeout, 0.0)
        while len(out) < max_records:
            try:
                if out:
                    item = self._queue.get_nowait()
                else:
                    item = self._queue.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                break
            if item is self._END:
                self._ended = True
                break
            if isinstance(item, BaseException):
                raise item
            out.append(item)
        if self._ended and not out:
            return None
        return out

    def commit(self) -> None:
        commit = getattr(self._inner, "commit", None)
        if callable(commit):
            commit()

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if callable(close):
            close()


class _OneArgSink:
    """Adapts a sink whose ``write`` takes only the value (metadata is dropped)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def write(self, value: bytes | str, metadata: Mapping[str, Any] | None = None) -> None:
        self._inner.write(value)

    def flush(self) -> None:
        getattr(self._inner, "flush", lambda: None)()

    def close(self) -> None:
        getattr(self._inner, "close", lambda: None)()


def as_source(obj: Any) -> Source:
    """A transport's object as a :class:`Source` (iterables get a reader thread)."""
    if callable(getattr(obj, "poll", None)):
        if not callable(getattr(obj, "commit", None)) or not callable(getattr(obj, "close", None)):
            raise ParameterError(f"{type(obj).__name__} has poll() but not commit() and close()")
        return obj  # type: ignore[no-any-return]
    if isinstance(obj, Iterable):
        return ThreadedSource(obj)
    raise ParameterError(f"{type(obj).__name__} is not a stream source: it needs poll() or __iter__")


def as_sink(obj: Any) -> Sink:
    """A transport's object as a :class:`Sink` (``write(value)``-only sinks are adapted)."""
    write = getattr(obj, "write", None)
    if not callable(write):
        raise ParameterError(f"{type(obj).__name__} is not a stream sink: it needs write()")
    try:
        inspect.signature(write).bind("value", None)
    except TypeError:
        return _OneArgSink(obj)
    except ValueError:  # a builtin without a signature: assume the protocol
        pass
    if not callable(getattr(obj, "flush", None)) or not callable(getattr(obj, "close", None)):
        return _OneArgSink(obj)
    return obj  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- resolution
def url_scheme(url: str) -> str:
    """``-`` and ``stdio://`` mean stdin/stdout; a bare path means ``file``."""
    if url in ("-", ""):
        return STDIO
    if "://" not in url:
        return "file"
    return urlparse(url).scheme.lower() or "file"


def normalise_url(url: str) -> str:
    """A bare path becomes ``file://path`` so every transport gets a URL."""
    scheme = url_scheme(url)
    if scheme == STDIO:
        return "stdio://"
    if "://" not in url:
        return f"file://{url}"
    return url


def _registration(url: str, kind: str, host: Any = None) -> Any:
    """The transport registered for ``url``'s scheme, if it can serve as a ``kind`` (source/sink).

    The plugin host resolves the scheme (installed schemes, "did you mean", which
    distribution provides it); only the source/sink check is the messaging port's own.
    """
    from adcore.plugins import get_host

    host = host or get_host()
    reg = host.resolve_scheme("messaging", url, scheme=url_scheme(url))
    if kind not in str(reg.metadata.get("kind") or "source+sink").split("+"):
        raise ParameterError(f"{reg.name}:// ({reg.qualified_name}) cannot be used as a {kind}")
    return reg


def open_source(url: str, *, host: Any = None, **options: Any) -> Source:
    """Open ``url`` as a source through the messaging port (errors before any read)."""
    factory = _registration(url, "source", host).load()
    return as_source(factory(normalise_url(url), kind="source", **options))


def open_sink(url: str, *, host: Any = None, **options: Any) -> Sink:
    """Open ``url`` as a sink through the messaging port."""
    factory = _registration(url, "sink", host).load()
    return as_sink(factory(normalise_url(url), kind="sink", **options))
