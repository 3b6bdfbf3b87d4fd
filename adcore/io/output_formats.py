"""How each output format lays out a batch of scores (for `adcore.io.writers.ScoreWriter`).

Format notes: a missing score (a row that ``--nan drop`` removed, expanded back as NaN) is
written as an empty cell in csv/tsv, null in json/jsonl and Parquet, and NaN in npy, which has
no missing value; JSON has no NaN/inf, so any non-finite float is null there. npy is a
structured array (score f8, label i8, extra fields) and drops passthrough columns; Parquet and
pyarrow are optional (MissingDependencyError without pyarrow).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from adcore.errors import DataError
from adcore.io.arrow_arrays import from_numpy
from adcore.io.formats import _pyarrow

_RESERVED = ("score", "label")


@dataclass
class _Batch:
    names: list[str]
    kinds: list[str]  # "pass" | "score" | "label" | "extra", parallel to names
    values: list[Any]  # list for passthrough, 1-D ndarray otherwise
    n: int


class _Out:
    needs_whole_file = False  # True: the writer seeks back or writes a footer, so cannot stream

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
            tw.flush()
            from adcore.io.arrow_csv import write_rows  # pyarrow's writer where it writes the same values

            if write_rows(f, b.values, b.kinds, "\t" if self.fmt == "tsv" else ","):
                return
            cols = [v if isinstance(v, list) else _csv_column(v) for v in b.values]
            w.writerows(zip(*cols, strict=True))  # floats go through repr(): exact round trip
            tw.flush()
        finally:
            tw.detach()

    def finish(self, f: Any) -> None:
        if not self.started:  # nothing written: a header, so the file is still a valid CSV
            tw, w = self._writer(f)
            w.writerow(_RESERVED)
            tw.flush()
            tw.detach()


def _csv_column(v: np.ndarray) -> list:
    """A numeric column as CSV cells: NaN (a dropped row's score) is an empty cell, not "nan"."""
    out = v.tolist()
    if v.dtype.kind == "f":
        missing = np.isnan(v)
        if missing.any():
            out = ["" if m else x for x, m in zip(out, missing.tolist(), strict=True)]
    return out


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
            return lambda obj: json.dumps(
                obj, ensure_ascii=False, separators=(",", ":"), default=_json_default
            ).encode("utf-8")
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
    needs_whole_file = True

    def __init__(self, fmt: str, path: str) -> None:
        super().__init__(fmt, path)
        self.pa, self.pq = _pyarrow("writing")
        self.writer: Any = None
        self.schema: Any = None

    def _table(self, b: _Batch) -> Any:
        pa = self.pa
        arrays = []
        for v, kind in zip(b.values, b.kinds, strict=True):
            if kind != "pass":
                arrays.append(from_numpy(v, pa, nan_is_null=True))  # NaN -> null: a missing score
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
            self.writer = self.pq.ParquetWriter(f, self.schema, use_dictionary=self._dictionary_columns())
        elif not t.schema.equals(self.schema):
            try:
                t = t.cast(self.schema)
            except (self.pa.ArrowException, ValueError):
                diff = [
                    f"{a.name!r} ({a.type} first, {c.type} now)"
                    for a, c in zip(self.schema, t.schema, strict=False)
                    if a.type != c.type
                ]
                raise DataError(
                    f"passthrough column(s) {', '.join(diff)} changed type between chunks; "
                    "Parquet needs one type per column (use a larger chunk size or csv/jsonl "
                    "output)",
                    path=self.path,
                ) from None
        self.writer.write_table(t)

    def _dictionary_columns(self) -> list[str]:
        """Columns worth dictionary encoding: all but the floating-point ones.

        Scores and p-values are nearly all distinct: Parquet's default dictionary encoding
        builds a dictionary per page and gives it up, which made writing 2,000,000 scores
        2.7x slower and the file 25% larger. Labels and passthrough text repeat: keep it there.
        """
        return [field.name for field in self.schema if not self.pa.types.is_floating(field.type)]

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

    needs_whole_file = True
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
    "csv": _CsvOut,
    "tsv": _CsvOut,
    "json": _JsonOut,
    "jsonl": _JsonOut,
    "parquet": _ParquetOut,
    "npy": _NpyOut,
}
