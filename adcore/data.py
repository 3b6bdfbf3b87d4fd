"""Reading datasets and writing scores: the public API for data files and arrays.

Every reader ends in the same checks, so a detector never sees a string, an inf or (unless the
caller chose a `nan_policy`) a NaN, and every bad input is reported as ONE `DataError` that names
the file, the line (text formats, 1-based, as an editor shows it) or row (arrays and Parquet,
0-based), the column, what is wrong and how to fix it.

Only numpy is required: pyarrow (Parquet), orjson (faster JSON) and pandas are imported inside
the functions that need them, so `import adcore.data` stays cheap and works without them.

This module picks the reader for a format and runs the shared checks on what it yields; the
readers, the checks, `Dataset` and the writers live in `adcore.io` and are re-exported here.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

import numpy as np

from adcore.errors import DataError
from adcore.io.checks import NAN_POLICIES, _apply_policy, _check_chunk, _check_policy, _plural
from adcore.io.csv_reader import NA_TOKENS, _CsvReader
from adcore.io.dataset import Dataset
from adcore.io.formats import (
    SUPPORTED_INPUT_FORMATS,
    SUPPORTED_OUTPUT_FORMATS,
    _prepare_input,
    format_from_path,
)
from adcore.io.json_reader import _open_json, _open_jsonl
from adcore.io.numpy_reader import _open_numpy
from adcore.io.parquet_reader import _open_parquet
from adcore.io.source import _Source
from adcore.io.writers import ScoreWriter, check_output_path, write_scores

__all__ = [
    "NAN_POLICIES",
    "NA_TOKENS",
    "SUPPORTED_INPUT_FORMATS",
    "SUPPORTED_OUTPUT_FORMATS",
    "Dataset",
    "ScoreWriter",
    "check_output_path",
    "format_from_path",
    "iter_dataset_chunks",
    "read_dataset",
    "write_scores",
]

_TEXT_CHUNK = 65536  # lines per block when the caller wants the whole file: big enough to amortise numpy


def read_dataset(
    path: str | os.PathLike,
    *,
    columns: Sequence[str] | None = None,
    header: bool | None = None,
    nan_policy: str = "error",
    min_rows: int = 1,
    fmt: str | None = None,
) -> Dataset:
    """Read a whole file into one Dataset.

    `columns` picks the features (names, or 0-based positions as strings for files without
    names); the other columns are kept as passthrough. `header` (CSV/TSV only): None = detect,
    the first row is a header when any cell is not a number. An input without data rows is always
    an error; `min_rows` is checked after nan_policy="drop".
    """
    _check_policy(nan_policy)
    p, f = _prepare_input(path, fmt)
    src = _open_source(p, f, None, columns, header)
    parts: list[np.ndarray] = []
    passthrough: dict[str, list] = {}
    with contextlib.closing(src.chunks):
        for chunk in src.chunks:
            _check_chunk(chunk.X, src.names, chunk.where, p, nan_policy)
            parts.append(chunk.X)
            for k, v in chunk.passthrough.items():
                passthrough.setdefault(k, []).extend(v)
    X = parts[0] if len(parts) == 1 else np.concatenate(parts)
    n_input = X.shape[0]
    X, kept = _apply_policy(X, src.names, nan_policy, p)
    if X.shape[0] < min_rows:
        dropped = n_input - X.shape[0]
        why = f" after dropping {dropped} of {n_input} rows with missing values" if dropped else ""
        raise DataError(f"need at least {_plural(min_rows, 'row')}, got {X.shape[0]}{why}", path=p)
    return Dataset(
        np.ascontiguousarray(X),
        list(src.names),
        source=p,
        passthrough=passthrough,
        kept_rows=kept,
        n_input_rows=n_input,
    )


def iter_dataset_chunks(
    path: str | os.PathLike,
    *,
    chunk_size: int,
    columns: Sequence[str] | None = None,
    header: bool | None = None,
    nan_policy: str = "error",
    fmt: str | None = None,
) -> Iterator[Dataset]:
    """Read a file as Datasets of at most `chunk_size` rows, in bounded memory.

    The arguments, the file and its header are checked at call time, before the first chunk.
    Every chunk has the same feature_names; `first_row` gives its place in the input and
    `kept_rows` is relative to the chunk (so `chunk.expand` works per chunk). A chunk whose rows
    were all dropped is still yielded (0 samples) so its passthrough rows reach the output.
    nan_policy="median" is refused: a per-chunk median would make results depend on chunk_size.
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise DataError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    _check_policy(nan_policy)
    if nan_policy == "median":
        raise DataError(
            "nan_policy='median' needs whole columns and cannot be used when reading in chunks; "
            "use --nan drop, or read the file without --chunk-size"
        )
    p, f = _prepare_input(path, fmt)
    src = _open_source(p, f, int(chunk_size), columns, header)
    return _iter_chunks(src, p, nan_policy)


def _iter_chunks(src: _Source, path: str, nan_policy: str) -> Iterator[Dataset]:
    first_row = 0
    with contextlib.closing(src.chunks):
        for chunk in src.chunks:
            _check_chunk(chunk.X, src.names, chunk.where, path, nan_policy)
            n = chunk.X.shape[0]
            X, kept = _apply_policy(chunk.X, src.names, nan_policy, path)
            yield Dataset(
                np.ascontiguousarray(X),
                list(src.names),
                source=path,
                passthrough=chunk.passthrough,
                kept_rows=kept,
                n_input_rows=n,
                first_row=first_row,
            )
            first_row += n


def _open_source(
    path: str, fmt: str, chunk: int | None, columns: Sequence[str] | None, header: bool | None
) -> _Source:
    """Set up a reader (header, column selection: errors surface now) and return its chunk stream.

    `chunk` None means the caller wants everything: text is still parsed in blocks, arrays whole.
    """
    if header not in (None, True, False):
        raise DataError(f"header must be True, False or None (detect), got {header!r}", path=path)
    if fmt in ("csv", "tsv"):
        reader = _CsvReader(path, "," if fmt == "csv" else "\t", chunk or _TEXT_CHUNK, columns, header)
        reader.whole_file = chunk is None
        return reader.source()
    if fmt == "jsonl":
        return _open_jsonl(path, chunk or _TEXT_CHUNK, columns)
    if fmt == "json":
        return _open_json(path, chunk, columns)
    if fmt in ("npy", "npz"):
        return _open_numpy(path, fmt, chunk, columns)
    return _open_parquet(path, chunk, columns)
