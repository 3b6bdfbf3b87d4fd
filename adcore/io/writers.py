"""Writing scores: one output row per input row, written atomically.

Output columns, in order: the passthrough columns (e.g. an id), `score` (float), `label` (int
0/1), then the `extra` columns. The caller writes one row per INPUT row in input order: rows
that nan_policy="drop" removed are expanded back with score NaN and label -1
(`Dataset.expand(scores, np.nan)`, `Dataset.expand(labels, -1)`).

Every format is written to a temporary file next to the target and moved into place with
os.replace only when complete, so a crash, an exception or a full disk never leaves a half-written
output, and an existing output stays intact until the new one is whole.

A writer may instead be given an open binary stream (``stream=sys.stdout.buffer``, as the CLI
does for ``--output -``): text formats are streamed chunk by chunk, so a pipe sees rows as they
are scored; npy and Parquet, which need the whole file (a row count in the header, a footer),
are built in a spooled temporary file and copied out on close. A stream cannot be un-written,
so an error mid-way leaves the rows already sent, as with any Unix filter.

How each format lays out the rows is in `adcore.io.output_formats`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable
from typing import IO, Any

import numpy as np

from adcore.errors import DataError
from adcore.io.formats import SUPPORTED_OUTPUT_FORMATS, _normalize_fmt, format_from_path
from adcore.io.output_formats import _IMPLS, _RESERVED, _Batch

__all__ = [
    "SUPPORTED_OUTPUT_FORMATS",
    "ScoreWriter",
    "check_output_path",
    "refuse_output_over_input",
    "same_file",
    "write_scores",
]


def check_output_path(
    path: str | os.PathLike, fmt: str | None = None, *, inputs: Iterable[str | os.PathLike] = ()
) -> str:
    """Validate an output path before any work is done; return its format.

    Refuses an unsupported format, a path that is a directory, and a parent directory that is
    missing, not a directory or not writable, so a long scoring run never fails at the very end.
    Refuses an output that is one of ``inputs`` (see :func:`refuse_output_over_input`).
    """
    p = os.fspath(path)
    refuse_output_over_input(p, inputs)
    if os.path.isdir(p):
        raise DataError("is a directory; give an output file name such as scores.csv", path=p)
    f = _normalize_fmt(fmt) if fmt is not None else format_from_path(p)
    if f not in SUPPORTED_OUTPUT_FORMATS:
        raise DataError(
            f"cannot write {f!r} output; output formats: {', '.join(SUPPORTED_OUTPUT_FORMATS)} "
            "(choose one with the file extension or --format)",
            path=p,
        )
    parent = os.path.dirname(os.path.abspath(p))
    if not os.path.exists(parent):
        raise DataError(f"the output directory {parent} does not exist; create it first", path=p)
    if not os.path.isdir(parent):
        raise DataError(f"{parent} is not a directory", path=p)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(f"the output directory {parent} is not writable", path=p)
    return f


def refuse_output_over_input(output: str | os.PathLike, inputs: Iterable[str | os.PathLike]) -> None:
    """Refuse an output that is an input file: replacing it would destroy the data being scored.

    "The same file" is the same file on disk, not the same string: ``./x.csv`` and ``x.csv``, a
    symlink to the input, and a hard link to it (same device and inode) are all refused. Inputs
    that are not local files (``-`` for stdin, ``s3://...``) cannot be overwritten by a local
    output and are skipped.
    """
    out = os.fspath(output)
    for given in inputs:
        source = os.fspath(given)
        if source == "-" or "://" in source:
            continue
        if same_file(out, source):
            raise DataError(
                f"is the input file ({source}); writing the scores there would destroy the data: "
                "choose another output file",
                path=out,
            )


def same_file(a: str, b: str) -> bool:
    """Same device and inode when both exist (links included), else the same resolved path."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # one does not exist (yet), or a name the OS cannot hold
        return os.path.realpath(a) == os.path.realpath(b)


def write_scores(
    path: str | os.PathLike,
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    passthrough: dict[str, list] | None = None,
    extra: dict[str, np.ndarray] | None = None,
    fmt: str | None = None,
    stream: IO[bytes] | None = None,
) -> None:
    """Write one batch of scores atomically (or to ``stream``): a ScoreWriter with a single write."""
    with ScoreWriter(path, fmt, stream=stream) as w:
        w.write(scores, labels, passthrough=passthrough, extra=extra)


def _stream_format(fmt: str | None, name: str) -> str:
    """A stream has no extension: the format must be named, and be one adcore writes."""
    if fmt is None:
        raise DataError("writing to a stream needs a format (--format)", path=name)
    f = _normalize_fmt(fmt)
    if f not in SUPPORTED_OUTPUT_FORMATS:
        raise DataError(f"cannot write {f!r} output; output formats: {', '.join(SUPPORTED_OUTPUT_FORMATS)}")
    return f


SPOOL_BYTES = 64 * 2**20  # npy/Parquet to a stream: kept in memory up to this size, then on disk


class ScoreWriter:
    """Chunked, atomic output: `with ScoreWriter(path) as w: w.write(...)` once per chunk.

    The first write fixes the columns; later writes must pass the same passthrough and extra
    names. Any exception inside the `with` block, inside write() or while finishing discards the
    temporary file and leaves any existing output untouched; the output appears only on close().
    With ``stream`` (an open binary file, e.g. ``sys.stdout.buffer``), ``path`` only names it in
    messages, ``fmt`` is required, and the stream is flushed but never closed.
    """

    def __init__(
        self, path: str | os.PathLike, fmt: str | None = None, *, stream: IO[bytes] | None = None
    ) -> None:
        self.path = os.fspath(path)
        self.fmt = check_output_path(self.path, fmt) if stream is None else _stream_format(fmt, self.path)
        # may raise MissingDependencyError (Parquet without pyarrow): before any file exists
        self._impl = _IMPLS[self.fmt](self.fmt, self.path)
        self._stream = stream
        self._tmp: str | None = None
        if stream is None:
            self._tmp, fd = _create_temp(self.path)
            self._file: Any = os.fdopen(fd, "wb")
        elif self._impl.needs_whole_file:
            self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed on close/abort
        else:
            self._file = stream
        self._pass_names: list[str] | None = None
        self._extra_names: list[str] | None = None
        self.n_rows = 0
        self._state = "open"

    def __enter__(self) -> ScoreWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:  # never publish an output nobody closed; just clean up
        if getattr(self, "_state", None) == "open":
            with contextlib.suppress(Exception):
                self.abort()

    def write(
        self,
        scores: np.ndarray,
        labels: np.ndarray,
        passthrough: dict[str, list] | None = None,
        extra: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Append rows. A bad call aborts the whole output: a partial file would be wrong."""
        if self._state != "open":
            raise ValueError(f"ScoreWriter for {self.path} is {self._state}")
        try:
            batch = self._batch(scores, labels, passthrough or {}, extra or {})
            self._impl.write(self._file, batch)
        except BaseException as e:
            self.abort()
            if isinstance(e, OSError) and not isinstance(e, BrokenPipeError):  # a reader that left: quiet
                raise DataError(f"cannot write the output ({e.strerror or e})", path=self.path) from None
            raise
        self.n_rows += batch.n

    def close(self) -> None:
        """Finish the file and move it into place (idempotent)."""
        if self._state == "closed":
            return
        if self._state != "open":
            raise ValueError(f"ScoreWriter for {self.path} was aborted; nothing was written")
        try:
            self._impl.finish(self._file)
            if self._stream is not None:
                self._finish_stream()
            else:
                if not self._file.closed:
                    self._file.flush()
                    os.fsync(self._file.fileno())
                    self._file.close()
                os.replace(self._tmp, self.path)
        except BaseException as e:
            self.abort()
            if isinstance(e, OSError) and not isinstance(e, BrokenPipeError):
                raise DataError(f"cannot write the output ({e.strerror or e})", path=self.path) from None
            raise
        self._state = "closed"

    def _finish_stream(self) -> None:
        """Copy a spooled npy/Parquet file out, then flush: the stream stays open for its owner."""
        assert self._stream is not None
        if self._file is not self._stream:
            self._file.seek(0)
            shutil.copyfileobj(self._file, self._stream)
            self._file.close()
        self._stream.flush()

    def abort(self) -> None:
        """Discard everything written so far (idempotent); an existing output is left as it was."""
        if self._state != "open":
            return
        self._state = "aborted"
        with contextlib.suppress(Exception):
            self._impl.discard()
        if self._file is not self._stream:  # never close a stream the caller owns
            with contextlib.suppress(OSError):
                self._file.close()
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)

    def _batch(self, scores: Any, labels: Any, passthrough: dict[str, list], extra: dict[str, Any]) -> _Batch:
        s = np.asarray(scores, dtype=np.float64)
        if s.ndim != 1:
            raise ValueError(f"scores must be 1-D, got shape {s.shape}")
        n = s.shape[0]
        lab = np.asarray(labels)
        if lab.shape != (n,):
            raise ValueError(f"labels must have shape ({n},) like scores, got {lab.shape}")
        if lab.dtype.kind == "f":
            if not np.all(np.isfinite(lab)) or not np.all(lab == np.round(lab)):
                raise ValueError("labels must be integers (0/1, or -1 for dropped rows)")
        elif lab.dtype.kind not in "iub":
            raise ValueError(f"labels must be integers, got dtype {lab.dtype}")
        lab = lab.astype(np.int64)
        pass_names = [str(k) for k in passthrough]
        extra_names = [str(k) for k in extra]
        for k in pass_names:
            if k in _RESERVED:
                raise DataError(
                    f"passthrough column {k!r} would clash with the output column {k!r}; "
                    "rename it in the input or leave it out of the passthrough columns",
                    path=self.path,
                )
        clash = [k for k in extra_names if k in _RESERVED or k in pass_names]
        if clash or len(set(pass_names)) != len(pass_names) or len(set(extra_names)) != len(extra_names):
            raise ValueError(f"duplicate output column names: {clash or pass_names + extra_names}")
        if self._pass_names is None:
            self._pass_names, self._extra_names = pass_names, extra_names
        elif (pass_names, extra_names) != (self._pass_names, self._extra_names):
            raise ValueError(
                f"every write must have the same columns: first passthrough={self._pass_names} "
                f"extra={self._extra_names}, now passthrough={pass_names} extra={extra_names}"
            )
        values: list[Any] = []
        for k, v in passthrough.items():
            v = v.tolist() if isinstance(v, np.ndarray) else list(v)
            if len(v) != n:
                raise ValueError(f"passthrough column {k!r} has {len(v)} values, expected {n}")
            values.append(v)
        values += [s, lab]
        for k, v in extra.items():
            a = np.asarray(v)
            if a.shape != (n,) or a.dtype.kind not in "iufb":
                raise ValueError(
                    f"extra column {k!r} must be a numeric 1-D array of {n} values, got {a.dtype} {a.shape}"
                )
            values.append(a)
        kinds = ["pass"] * len(pass_names) + ["score", "label"] + ["extra"] * len(extra_names)
        return _Batch(pass_names + list(_RESERVED) + extra_names, kinds, values, n)


def _create_temp(path: str) -> tuple[str, int]:
    """A new file next to the target (same filesystem, so os.replace is atomic), mode 0666 & ~umask."""
    d, base = os.path.split(os.path.abspath(path))
    while True:
        tmp = os.path.join(d, f".{base}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        except OSError as e:
            raise DataError(f"cannot create a file in {d} ({e.strerror})", path=path) from None
        return tmp, fd
