"""Built-in stream endpoints: JSON lines on stdin/stdout and in local files.

Both implement the protocols of :mod:`adcore.messaging`. On POSIX the source reads the file
descriptor directly, in chunks of up to 1 MiB, waiting with ``select()`` so that ``poll``
can time out while a slow producer (``tail -f``) has nothing to say; no reader thread is
needed, so the scoring thread never fights one for the GIL. Where ``select`` cannot be
used (Windows pipes, in-memory streams) a reader thread does the waiting instead. Lines
are handed out as ``bytes`` without the newline and are not decoded here: the JSON parser
takes UTF-8 bytes directly, and malformed-line handling is the service's job so every
transport behaves the same. Neither endpoint has offsets, so ``commit`` does nothing.
"""

from __future__ import annotations

import io
import os
import select
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlparse

from adcore.errors import DataError
from adcore.messaging import ThreadedSource

_CHUNK = 1 << 20


def _selectable_fd(stream: Any) -> int | None:
    """The stream's file descriptor when ``select`` works on it (POSIX), else ``None``."""
    if os.name != "posix":
        return None
    try:
        return int(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None


def _iter_lines(stream: IO[Any]) -> Iterator[bytes]:
    for line in stream:
        raw = line if isinstance(line, bytes) else line.encode("utf-8")
        yield raw.rstrip(b"\r\n")


class LineSource:
    """The lines of a stream as ``bytes``; see the module docstring."""

    def __init__(self, stream: IO[Any], name: str, close_stream: bool = False) -> None:
        self.stream = stream
        self.name = name
        self._close_stream = close_stream
        self._fd = _selectable_fd(stream)
        self._fallback = ThreadedSource(_iter_lines(stream)) if self._fd is None else None
        self._lines: list[bytes] = []
        self._pos = 0
        self._partial = b""
        self._eof = False

    def __iter__(self) -> Iterator[str]:
        """Text lines without the newline (blocking; for simple scripts)."""
        while True:
            batch = self.poll(1 << 30, 3600.0)
            if batch is None:
                return
            for line in batch:
                yield line.decode("utf-8", errors="replace") if isinstance(line, bytes) else str(line)

    def poll(self, max_records: int, timeout: float) -> list[Any] | None:
        """Up to ``max_records`` lines; waits at most ``timeout`` s for the first one."""
        if self._fallback is not None:
            return self._fallback.poll(max_records, timeout)
        assert self._fd is not None
        out: list[bytes] = []
        deadline = time.monotonic() + max(timeout, 0.0)
        while len(out) < max_records:
            if self._pos < len(self._lines):
                take = self._lines[self._pos : self._pos + max_records - len(out)]
                self._pos += len(take)
                out += take
                continue
            if self._eof:
                break
            wait = 0.0 if out else max(deadline - time.monotonic(), 0.0)
            if not select.select([self._fd], [], [], wait)[0]:
                break
            chunk = os.read(self._fd, _CHUNK)
            if not chunk:
                self._eof = True
                self._lines, self._pos = ([self._partial] if self._partial else []), 0
                self._partial = b""
                continue
            lines = (self._partial + chunk).split(b"\n")
            self._partial = lines.pop()
            self._lines, self._pos = lines, 0
        if not out and self._eof and self._pos >= len(self._lines):
            return None
        return out

    def commit(self) -> None:
        """Nothing to commit: a line stream has no offsets."""

    def close(self) -> None:
        if self._close_stream:
            self.stream.close()


class LineSink:
    """Writes one line per record; ``flush`` pushes them to the OS (bounded latency).

    Values arrive as UTF-8 bytes from the service, so they go to the stream's binary
    buffer when it has one (no decode/encode round trip); a text-only stream (StringIO)
    gets text.
    """

    def __init__(self, stream: IO[Any], name: str, close_stream: bool = False) -> None:
        self.stream = stream
        self.name = name
        self._close_stream = close_stream
        if hasattr(stream, "buffer"):
            stream.flush()  # anything already written as text goes first
            self._binary: Any = stream.buffer
        elif isinstance(stream, (io.BufferedIOBase, io.RawIOBase)):
            self._binary = stream
        else:
            self._binary = None

    def write(self, value: bytes | str, metadata: Mapping[str, Any] | None = None) -> None:
        """Append ``value`` and a newline; ``metadata`` has no place in a line stream."""
        if self._binary is not None:
            self._binary.write(value if isinstance(value, bytes) else value.encode("utf-8"))
            self._binary.write(b"\n")
        else:
            self.stream.write(value.decode("utf-8") if isinstance(value, bytes) else value)
            self.stream.write("\n")

    def write_many(self, values: list[bytes], metadata: list[Mapping[str, Any] | None] | None = None) -> None:
        """Append many lines in one call (the service's fast path for a whole batch)."""
        if not values:
            return
        if self._binary is not None:
            try:
                blob = b"\n".join(values)  # type: ignore[arg-type]
            except TypeError:  # some values are text
                blob = b"\n".join(v if isinstance(v, bytes) else v.encode("utf-8") for v in values)
            self._binary.write(blob + b"\n")
            return
        for value in values:
            self.write(value)

    def flush(self) -> None:
        if self._binary is not None:
            self._binary.flush()
        self.stream.flush()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._close_stream:
                self.stream.close()


def file_path_from_url(url: str) -> Path:
    """``file:///abs/path`` or ``file://relative/path`` -> a Path."""
    parsed = urlparse(url)
    return Path(unquote((parsed.netloc or "") + parsed.path))


def open_stdio(url: str = "stdio://", *, kind: str = "source", **options: Any) -> LineSource | LineSink:
    if kind == "source":
        return LineSource(sys.stdin, "stdin")
    return LineSink(sys.stdout, "stdout")


def open_file(url: str, *, kind: str = "source", **options: Any) -> LineSource | LineSink:
    path = file_path_from_url(url)
    if kind == "source":
        if not path.is_file():
            raise DataError("no such file", path=str(path))
        return LineSource(path.open("rb"), str(path), close_stream=True)
    if not path.parent.is_dir():
        raise DataError("cannot write: the folder does not exist", path=str(path))
    return LineSink(path.open("ab"), str(path), close_stream=True)
