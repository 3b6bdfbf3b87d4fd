"""Parquet files (optional pyarrow): numeric columns can be features, the others pass through."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from adcore.errors import DataError
from adcore.io.arrow_arrays import to_numpy
from adcore.io.checks import _check_unique, _resolve_columns
from adcore.io.formats import _pyarrow
from adcore.io.source import _Chunk, _row_locator, _Source


def _open_parquet(
    path: str,
    chunk: int | None,
    columns: Sequence[str] | None,
    *,
    fileobj: Any = None,
    row_groups: Sequence[int] | None = None,
) -> _Source:
    """`fileobj`: an open binary file to read instead of `path` (which then only names it);
    `row_groups`: read only these consecutive row groups (a partition of the file), with rows
    numbered from the file's start so errors name the row a person finds in the whole file."""
    pa, pq = _pyarrow("reading")
    try:
        # pre_buffer: pyarrow's default fetches every column chunk of every row group that
        # iter_batches will read before the first batch: the whole file in memory (2 GB for a
        # 10M x 20 file), which breaks the chunked reader's memory bound and is slower. A
        # partition (row_groups) is bounded anyway, and on S3 coalesced reads pay off there.
        pf = pq.ParquetFile(path if fileobj is None else fileobj, pre_buffer=row_groups is not None)
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"cannot be read as a Parquet file ({e})", path=path) from None
    schema = pf.schema_arrow
    names = list(schema.names)
    _check_unique(names, path, "the Parquet schema")

    def numeric(t: Any) -> bool:
        return bool(
            pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_null(t)
        )

    feat, pas = _resolve_columns(names, columns, False, path)
    bad = [names[j] for j in feat if not numeric(schema.field(names[j]).type)]
    if bad:
        desc = ", ".join(f"{b!r} ({schema.field(b).type})" for b in bad)
        hint = (
            (
                "choose the feature columns with --columns (columns=[...]); the other columns are then "
                "passed through to the output"
            )
            if columns is None
            else "leave them out of --columns"
        )
        raise DataError(f"non-numeric column(s) {desc} cannot be features; {hint}", path=path, column=bad[0])
    n = pf.metadata.num_rows
    if n == 0:
        raise DataError("the file has no data rows", path=path)
    wanted = [names[j] for j in feat + pas]

    float64 = pa.float64()

    def column(tbl: Any, name: str) -> np.ndarray:
        values = tbl.column(name)
        if values.type != float64:
            values = values.cast(float64, safe=False)
        return to_numpy(values)

    def convert(tbl: Any, s: int) -> _Chunk:
        # One column_stack of the columns' arrays (zero-copy views where they allow it) is
        # ~5x faster than filling a row-major matrix column by column (strided writes).
        X = np.column_stack([column(tbl, names[j]) for j in feat]).astype(np.float64, copy=False)
        pt = {names[j]: tbl.column(names[j]).to_pylist() for j in pas}
        return _Chunk(X, pt, _row_locator(s))

    def chunks() -> Iterator[_Chunk]:
        s = 0
        try:
            if row_groups is not None:
                meta = pf.metadata
                s = sum(meta.row_group(i).num_rows for i in range(min(row_groups, default=0)))
                tables: Any = pf.iter_batches(
                    batch_size=chunk or 65536, row_groups=list(row_groups), columns=wanted
                )
            elif chunk is None:
                tables = [pf.read(columns=wanted)]
            else:
                tables = pf.iter_batches(batch_size=chunk, columns=wanted)
            for tbl in tables:
                if tbl.num_rows:
                    yield convert(tbl, s)
                s += tbl.num_rows
        except pa.ArrowException as e:
            raise DataError(f"cannot read the Parquet data near row {s} ({e})", path=path) from None

    return _Source([names[j] for j in feat], chunks())
