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

import contextlib
import io
import os
import select
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlparse

from adcore.errors import DataError, SinkWriteError
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


def _iter_lines(stream: IO[Any], limit: int | None = None) -> Iterator[bytes]:
    """The stream's lines as bytes; a line over ``limit`` bytes is cut to ``limit + 1`` (see LineSource).

    ``readline(n)`` never holds more than ``n`` characters, so an endless line costs
    bounded memory here too.
    """
    size = -1 if limit is None else limit + 1
    while True:
        line = stream.readline(size)
        if not line:
            return
        raw = line if isinstance(line, bytes) else line.encode("utf-8")
        if raw.endswith(b"\n") or limit is None or len(line) <= limit:
            yield raw.rstrip(b"\r\n")
            continue
        yield raw  # oversized: the rest of the line is skipped unread into memory
        while line and not (line.endswith(b"\n") if isinstance(line, bytes) else line.endswith("\n")):
            line = stream.readline(size)


class LineSource:
    """The lines of a stream as ``bytes``; see the module docstring.

    Buffering is linear: a partial line grows in a ``bytearray`` and only the new chunk is
    searched for a newline (joining the partial line to every chunk was quadratic: a 40 MB
    line took 40 s). ``max_record_bytes`` (``None``: no limit; the streaming service sets
    it) bounds what one line may hold: a longer line is handed out cut to
    ``max_record_bytes + 1`` bytes, so the service dead-letters it as oversized, and the
    rest of it is read and dropped up to the next newline without being kept.
    """

    def __init__(self, stream: IO[Any], name: str, close_stream: bool = False) -> None:
        self.stream = stream
        self.name = name
        self.max_record_bytes: int | None = None
        self._close_stream = close_stream
        self._fd = _selectable_fd(stream)
        self._fallback: ThreadedSource | None = None
        self._lines: list[bytes] = []
        self._pos = 0
        self._partial = bytearray()
        self._skipping = False  # dropping the rest of an oversized line
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
        """Up to ``max_records`` lines; returns by ``timeout`` s even while a long line streams in."""
        if self._fd is None:
            if self._fallback is None:
                self._fallback = ThreadedSource(_iter_lines(self.stream, self.max_record_bytes))
            return self._fallback.poll(max_records, timeout)
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
            remaining = deadline - time.monotonic()
            if out and remaining <= 0:
                break
            if not select.select([self._fd], [], [], 0.0 if out else max(remaining, 0.0))[0]:
                break
            self._read_chunk()
            if not out and self._pos >= len(self._lines) and time.monotonic() >= deadline:
                break  # a long line is still arriving: return at the deadline (SIGTERM is heard)
        if not out and self._eof and self._pos >= len(self._lines):
            return None
        return out

    def _read_chunk(self) -> None:
        """Read what is available (up to 1 MiB) into ``_lines``; EOF ends the partial line."""
        assert self._fd is not None
        chunk = os.read(self._fd, _CHUNK)
        if not chunk:
            self._eof = True
            self._lines, self._pos = [], 0
            if self._partial or self._skipping:
                self._end_line()
            return
        lines: list[bytes] = []
        start = 0
        if self._partial or self._skipping:  # finish the pending line first
            newline = chunk.find(b"\n")
            if newline < 0:
                self._extend_partial(chunk)
                self._lines, self._pos = lines, 0
                return
            self._extend_partial(chunk[:newline])
            lines.append(self._end_line())
            start = newline + 1
        rest = chunk[start:].split(b"\n")
        self._extend_partial(rest.pop())
        limit = self.max_record_bytes
        if limit is not None and rest and max(map(len, rest)) > limit:
            rest = [line if len(line) <= limit else line[: limit + 1] for line in rest]
        lines += rest
        self._lines, self._pos = lines, 0

    def _extend_partial(self, piece: bytes) -> None:
        """Append to the pending line, keeping at most ``max_record_bytes + 1`` bytes of it."""
        if self._skipping or not piece:
            return
        self._partial += piece
        limit = self.max_record_bytes
        if limit is not None and len(self._partial) > limit:
            del self._partial[limit + 1 :]
            self._skipping = True

    def _end_line(self) -> bytes:
        """The pending line as bytes (cut, if it was oversized); the buffer starts afresh."""
        line = bytes(self._partial)
        self._partial = bytearray()
        self._skipping = False
        if self._eof:
            self._lines.append(line)
        return line

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
        with self._writing():
            self._write(value)

    def _write(self, value: bytes | str) -> None:
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
        with self._writing():
            self._write_many(values)

    def _write_many(self, values: list[bytes]) -> None:
        if self._binary is not None:
            try:
                blob = b"\n".join(values)  # type: ignore[arg-type]
            except TypeError:  # some values are text
                blob = b"\n".join(v if isinstance(v, bytes) else v.encode("utf-8") for v in values)
            self._binary.write(blob + b"\n")
            return
        for value in values:
            self._write(value)

    def flush(self) -> None:
        with self._writing():
            if self._binary is not None:
                self._binary.flush()
            self.stream.flush()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """An OS error while writing becomes a typed error naming this sink (exit 2, not a "bug").

        A full disk is something a user fixes, not a defect. A broken pipe stays a
        ``BrokenPipeError``: the reader went away (``| head``), which the CLI ends quietly.
        """
        try:
            yield
        except BrokenPipeError:
            raise
        except OSError as exc:
            reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            raise SinkWriteError(f"{reason} writing {self.name}") from exc

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._close_stream:
                with self._writing():  # closing flushes what is left: the same error, typed
                    self.stream.close()


def file_path_from_url(url: str) -> Path:
    """``file:///abs/path`` or ``file://relative/path`` -> a Path."""
    parsed = urlparse(url)
    return Path(unquote((parsed.netloc or "") + parsed.path))


def open_stdio(url: str = "stdio://", *, kind: str = "source", **options: Any) -> LineSource | LineSink:
    if kind == "source":
        if sys.stdin is None:
            raise DataError("stdin is closed: nothing to read (give --source file://PATH)")
        return LineSource(sys.stdin, "stdin")
    if sys.stdout is None:  # started with >&-
        raise DataError("stdout is closed: the output has nowhere to go (give --sink file://PATH)")
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
