"""Reading one partition of a data file (an open file object, a range of Parquet row groups).

Distributed executors (``adcore-dask``) read many files, local or remote (``s3://`` through
fsspec), and cut Parquet files into groups of row groups. They must read each piece exactly
as :func:`adcore.data.iter_dataset_chunks` reads a whole local file: the same header
detection, column selection, refusal of non-numeric features, inf/NaN checks and nan_policy,
so that a cluster scores the same rows with the same bits as one process. These functions
are that reader, opened on a file object instead of a path; they add no parsing of their own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from adcore.errors import DataError
from adcore.io.checks import _apply_policy, _check_chunk, _check_policy
from adcore.io.csv_reader import _CsvReader
from adcore.io.dataset import Dataset
from adcore.io.formats import _normalize_fmt, _pyarrow
from adcore.io.parquet_reader import _open_parquet
from adcore.io.source import _open_binary

PARTITION_FORMATS = ("csv", "tsv", "parquet")


def parquet_row_group_sizes(fileobj: Any, name: str) -> list[int]:
    """Rows per row group, read from the footer only (no data pages): a cheap partition plan.

    ``fileobj`` is a path or an open binary file; ``name`` names it in errors. A file that is
    not Parquet is a ``DataError`` naming it, as the full reader would say.
    """
    pa, pq = _pyarrow("reading")
    try:
        meta = pq.ParquetFile(fileobj).metadata
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"cannot be read as a Parquet file ({e})", path=name) from None
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def iter_partition_chunks(
    fileobj: Any,
    name: str,
    fmt: str,
    *,
    chunk_size: int,
    columns: Sequence[str] | None = None,
    header: bool | None = None,
    nan_policy: str = "error",
    row_groups: Sequence[int] | None = None,
    first_row: int = 0,
) -> Iterator[Dataset]:
    """Datasets of at most ``chunk_size`` rows from one partition, checked as the core reads files.

    ``fileobj``: a local path, or an open binary file (seekable; closed when the iterator
    ends). ``fmt``: csv, tsv or parquet. ``row_groups``: for Parquet, the consecutive row
    groups that make the partition (None = the whole file); ``first_row`` is then the file
    row of its first row, so each chunk's ``first_row`` is its place in the FILE and errors
    name file rows. CSV partitions are whole files. nan_policy "median" is refused, as for
    any chunked read: a per-chunk median would make scores depend on the partitioning.
    """
    _check_policy(nan_policy)
    if nan_policy == "median":
        raise DataError(
            "nan_policy='median' needs whole columns and cannot be used when reading in partitions; "
            "use --nan drop"
        )
    f = _normalize_fmt(fmt)
    if f not in PARTITION_FORMATS:
        raise DataError(
            f"cannot read {f!r} files in partitions; use {', '.join(PARTITION_FORMATS)}", path=name
        )
    if f in ("csv", "tsv"):
        if row_groups is not None or first_row:
            raise ValueError("CSV partitions are whole files")
        opened = _open_binary(fileobj) if isinstance(fileobj, str) else fileobj
        try:
            src = _CsvReader(
                name, "," if f == "csv" else "\t", chunk_size, columns, header, fileobj=opened
            ).source()
        except BaseException:
            with contextlib.suppress(Exception):
                opened.close()
            raise
    else:
        src = _open_parquet(name, chunk_size, columns, fileobj=fileobj, row_groups=row_groups)
    return _chunks(src.names, src.chunks, name, nan_policy, first_row)


def _chunks(
    names: list[str], chunks: Iterator[Any], name: str, nan_policy: str, first_row: int
) -> Iterator[Dataset]:
    """The shared checks and nan_policy on each raw chunk (as ``adcore.data`` applies them)."""
    with contextlib.closing(chunks):
        for chunk in chunks:
            _check_chunk(chunk.X, names, chunk.where, name, nan_policy)
            n = chunk.X.shape[0]
            X, kept = _apply_policy(chunk.X, names, nan_policy, name)
            yield Dataset(
                np.ascontiguousarray(X),
                list(names),
                source=name,
                passthrough=chunk.passthrough,
                kept_rows=kept,
                n_input_rows=n,
                first_row=first_row,
            )
            first_row += n
