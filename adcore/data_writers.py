"""Writing scores: one output row per input row, written atomically.

Output columns, in order: the passthrough columns (e.g. an id), `score` (float), `label` (int
0/1), then the `extra` columns. The caller writes one row per INPUT row in input order: rows
that nan_policy="drop" removed are expanded back with score NaN and label -1
(`Dataset.expand(scores, np.nan)`, `Dataset.expand(labels, -1)`).

Every format is written to a temporary file next to the target and moved into place with
os.replace only when complete, so a crash, an exception or a full disk never leaves a half-written
output, and an existing output stays intact until the new one is whole.

Format notes: JSON has no NaN/inf, so non-finite floats are written as null (json, jsonl); npy
is a structured array (score f8, label i8, extra fields) and drops passthrough columns; Parquet
and pyarrow are optional (MissingDependencyError without pyarrow).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np

from adcore.errors import DataError

__all__ = ["SUPPORTED_OUTPUT_FORMATS", "ScoreWriter", "check_output_path", "write_scores"]

SUPPORTED_OUTPUT_FORMATS = ("csv", "tsv", "parquet", "json", "jsonl", "npy")
_RESERVED = ("score", "label")


def check_output_path(path: str | os.PathLike, fmt: str | None = None) -> str:
    """Validate an output path before any work is done; return its format.

    Refuses an unsupported format, a path that is a directory, and a parent directory that is
    missing, not a directory or not writable, so a long scoring run never fails at the very end.
    """
    from adcore.data import _normalize_fmt, format_from_path  # lazy: adcore.data imports this module

    p = os.fspath(path)
    if os.path.isdir(p):
        raise DataError("is a directory; give an output file name such as scores.csv", path=p)
    f = _normalize_fmt(fmt) if fmt is not None else format_from_path(p)
    if f not in SUPPORTED_OUTPUT_FORMATS:
        raise DataError(f"cannot write {f!r} output; output formats: {', '.join(SUPPORTED_OUTPUT_FORMATS)} "
                        "(choose one with the file extension or --format)", path=p)
    parent = os.path.dirname(os.path.abspath(p))
    if not os.path.exists(parent):
        raise DataError(f"the output directory {parent} does not exist; create it first", path=p)
    if not os.path.isdir(parent):
        raise DataError(f"{parent} is not a directory", path=p)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(f"the output directory {parent} is not writable", path=p)
    return f


def write_scores(
    path: str | os.PathLike,
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    passthrough: dict[str, list] | None = None,
    extra: dict[str, np.ndarray] | None = None,
    fmt: str | None = None,
) -> None:
    """Write one batch of scores atomically: a ScoreWriter with a single write."""
    with ScoreWriter(path, fmt) as w:
        w.write(scores, labels, passthrough=passthrough, extra=extra)


@dataclass
class _Batch:
    names: list[str]
    kinds: list[str]  # "pass" | "score" | "label" | "extra", parallel to names
    values: list[Any]  # list for passthrough, 1-D ndarray otherwise
    n: int


class ScoreWriter:
    """Chunked, atomic output: `with ScoreWriter(path) as w: w.write(...)` once per chunk.

    The first write fixes the columns; later writes must pass the same passthrough and extra
    names. Any exception inside the `with` block, inside write() or while finishing discards the
    temporary file and leaves any existing output untouched; the output appears only on close().
    """

    def __init__(self, path: str | os.PathLike, fmt: str | None = None) -> None:
        self.path = os.fspath(path)
        self.fmt = check_output_path(self.path, fmt)
        # may raise MissingDependencyError (Parquet without pyarrow): before any file exists
        self._impl = _IMPLS[self.fmt](self.fmt, self.path)
        self._tmp, fd = _create_temp(self.path)
        self._file = os.fdopen(fd, "wb")
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
            if isinstance(e, OSError):
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
            if not self._file.closed:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()
            os.replace(self._tmp, self.path)
        except BaseException as e:
            self.abort()
            if isinstance(e, OSError):
                raise DataError(f"cannot write the output ({e.strerror or e})", path=self.path) from None
            raise
        self._state = "closed"

    def abort(self) -> None:
        """Discard everything written so far (idempotent); an existing output is left as it was."""
        if self._state != "open":
            return
        self._state = "aborted"
        with contextlib.suppress(Exception):
            self._impl.discard()
        with contextlib.suppress(OSError):
            self._file.close()
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
                raise DataError(f"passthrough column {k!r} would clash with the output column {k!r}; "
                                "rename it in the input or leave it out of the passthrough columns",
                                path=self.path)
        clash = [k for k in extra_names if k in _RESERVED or k in pass_names]
        if clash or len(set(pass_names)) != len(pass_names) or len(set(extra_names)) != len(extra_names):
            raise ValueError(f"duplicate output column names: {clash or pass_names + extra_names}")
        if self._pass_names is None:
            self._pass_names, self._extra_names = pass_names, extra_names
        elif (pass_names, extra_names) != (self._pass_names, self._extra_names):
            raise ValueError(f"every write must have the same columns: first passthrough={self._pass_names} "
                             f"extra={self._extra_names}, now passthrough={pass_names} extra={extra_names}")
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
                raise ValueError(f"extra column {k!r} must be a numeric 1-D array of {n} values, "
                                 f"got {a.dtype} {a.shape}")
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


# --------------------------------------------------------------------------- formats


class _Out:
    def __init__(self, fmt: str, path: str) -> None:
        self.fmt, self.path = fmt, path

    def write(self, f: Any, b: _Batch) -> None:
        raise NotImplementedError

    def finish(self, f: Any) -> None:
        """Complete the file (trailers, headers that need the row count)."""

    def discard(self) -> None:
        """Release resources after an abort."""


class _CsvOut(_Out):
    started = False

    def _writer(self, f: Any) -> tuple[io.TextIOWrapper, Any]:
        tw = io.TextIOWrapper(f, encoding="utf-8", newline="", write_through=True)
        return tw, csv.writer(tw, delimiter="\t" if self.fmt == "tsv" else ",", lineterminator="\n")

    def write(self, f: Any, b: _Batch) -> None:
        tw, w = self._writer(f)
        try:
            if not self.started:
                w.writerow(b.names)
                self.started = True
            cols = [v if isinstance(v, list) else v.tolist() for v in b.values]
            w.writerows(zip(*cols, strict=True))  # floats go through repr(): exact round trip, NaN as "nan"
            tw.flush()
        finally:
            tw.detach()

    def finish(self, f: Any) -> None:
        if not self.started:  # nothing written: a header, so the file is still a valid CSV
            tw, w = self._writer(f)
            w.writerow(_RESERVED)
            tw.flush()
            tw.detach()


def _json_default(o: Any) -> Any:
    if hasattr(o, "isoformat"):
        return o.isoformat()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (bytes, bytearray)):
        return o.decode("utf-8", "replace")
    return str(o)


def _json_column(v: Any) -> list:
    """JSON has no NaN/inf: non-finite floats become null."""
    if isinstance(v, np.ndarray):
        out = v.tolist()
        if v.dtype.kind == "f" and not np.isfinite(v).all():
            out = [x if math.isfinite(x) else None for x in out]
        return out
    return [None if isinstance(x, float) and not math.isfinite(x) else x for x in v]


class _JsonOut(_Out):
    """jsonl: one object per line; json: a list of objects, streamed."""

    count = 0

    @staticmethod
    def _dumps() -> Any:
        try:
            import orjson
        except ImportError:
            return lambda obj: json.dumps(obj, ensure_ascii=False, separators=(",", ":"),
                                          default=_json_default).encode("utf-8")
        opt = orjson.OPT_SERIALIZE_NUMPY
        return lambda obj: orjson.dumps(obj, default=_json_default, option=opt)

    def _lines(self, rows: list[dict]) -> list[bytes] | bytes:
        """The rows as JSON objects, one per line (without the final newline).

        One dumps() call for the whole batch is an order of magnitude faster than one per row.
        The records all have the same flat keys, so each boundary between two objects is exactly
        one "},{"; when the count says no value contains that text, it is safe to split there.
        """
        dumps = self._dumps()
        whole = dumps(rows)[1:-1]
        if whole.count(b"},{") == len(rows) - 1:
            return whole.replace(b"},{", b"}\n{")
        return b"\n".join(dumps(r) for r in rows)

    def write(self, f: Any, b: _Batch) -> None:
        cols = [_json_column(v) for v in b.values]
        rows = [dict(zip(b.names, vals, strict=True)) for vals in zip(*cols, strict=True)]
        if not rows:
            return
        body = self._lines(rows)
        if self.fmt == "jsonl":
            f.write(body + b"\n")
        else:
            f.write((b"[\n" if self.count == 0 else b",\n") + body.replace(b"}\n{", b"},\n{"))
        self.count += len(rows)

    def finish(self, f: Any) -> None:
        if self.fmt == "json":
            f.write(b"[]\n" if self.count == 0 else b"\n]\n")


class _ParquetOut(_Out):
    def __init__(self, fmt: str, path: str) -> None:
        super().__init__(fmt, path)
        from adcore.data import _pyarrow

        self.pa, self.pq = _pyarrow("writing")
        self.writer: Any = None
        self.schema: Any = None

    def _table(self, b: _Batch) -> Any:
        pa = self.pa
        arrays = []
        for v, kind in zip(b.values, b.kinds, strict=True):
            if kind != "pass":
                arrays.append(pa.array(v))
                continue
            try:
                arr = pa.array(v)
            except pa.ArrowException:  # mixed value types: keep them all, as text
                arr = pa.array([None if x is None else str(x) for x in v], pa.string())
            if pa.types.is_null(arr.type):  # all missing: text, so later chunks can fill it
                arr = arr.cast(pa.string())
            arrays.append(arr)
        return pa.Table.from_arrays(arrays, names=b.names)

    def write(self, f: Any, b: _Batch) -> None:
        t = self._table(b)
        if self.writer is None:
            self.schema = t.schema
            self.writer = self.pq.ParquetWriter(f, self.schema)
        elif not t.schema.equals(self.schema):
            try:
                t = t.cast(self.schema)
            except (self.pa.ArrowException, ValueError):
                diff = [f"{a.name!r} ({a.type} first, {c.type} now)"
                        for a, c in zip(self.schema, t.schema, strict=False) if a.type != c.type]
                raise DataError(f"passthrough column(s) {', '.join(diff)} changed type between chunks; "
                                "Parquet needs one type per column (use a larger chunk size or csv/jsonl "
                                "output)",
                                path=self.path) from None
        self.writer.write_table(t)

    def finish(self, f: Any) -> None:
        if self.writer is None:
            pa = self.pa
            schema = pa.schema([("score", pa.float64()), ("label", pa.int64())])
            self.writer = self.pq.ParquetWriter(f, schema)
            self.writer.write_table(schema.empty_table())
        self.writer.close()

    def discard(self) -> None:
        if self.writer is not None:
            self.writer.close()


class _NpyOut(_Out):
    """A structured .npy array written in chunks: the header is written first with room for any
    row count and rewritten in place with the real count on finish."""

    dtype: np.dtype | None = None
    count = 0

    def _header(self, n: int) -> bytes:
        assert self.dtype is not None
        descr = np.lib.format.dtype_to_descr(self.dtype)

        def text(k: int) -> str:
            return f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': ({k},), }}"

        longest = len(text(10**20)) + 1  # + "\n"; fixed length whatever the row count
        version, prefix = ((1, 0), 10) if longest + 10 < 65536 else ((2, 0), 12)
        size = -(-(prefix + longest) // 64) * 64 - prefix
        body = text(n)
        body = (body + " " * (size - len(body) - 1) + "\n").encode("latin1")
        length = size.to_bytes(2 if version == (1, 0) else 4, "little")
        return b"\x93NUMPY" + bytes(version) + length + body

    def _start(self, f: Any, fields: list[tuple[str, str]]) -> None:
        self.dtype = np.dtype([("score", "<f8"), ("label", "<i8"), *fields])
        f.write(self._header(0))

    def write(self, f: Any, b: _Batch) -> None:
        if self.dtype is None:
            parts = zip(b.names, b.values, b.kinds, strict=True)
            self._start(f, [(k, v.dtype.str) for k, v, kind in parts if kind == "extra"])
        rec = np.empty(b.n, dtype=self.dtype)
        for k, v, kind in zip(b.names, b.values, b.kinds, strict=True):
            if kind != "pass":  # npy has no text columns: passthrough is dropped
                rec[k] = v
        f.write(rec.tobytes())
        self.count += b.n

    def finish(self, f: Any) -> None:
        if self.dtype is None:
            self._start(f, [])
        f.flush()
        f.seek(0)
        f.write(self._header(self.count))
        f.seek(0, os.SEEK_END)


_IMPLS: dict[str, type[_Out]] = {
    "csv": _CsvOut, "tsv": _CsvOut, "json": _JsonOut, "jsonl": _JsonOut,
    "parquet": _ParquetOut, "npy": _NpyOut,
}
