"""File formats: which ones adcore reads and writes, and how a path's format is decided.

The format comes from the file extension (case-insensitive) unless the caller names it with
--format / fmt=. Parquet needs the optional pyarrow, loaded by `_pyarrow` on first use.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from adcore.errors import DataError, MissingDependencyError

SUPPORTED_INPUT_FORMATS = ("csv", "tsv", "parquet", "npy", "npz", "json", "jsonl")
SUPPORTED_OUTPUT_FORMATS = ("csv", "tsv", "parquet", "json", "jsonl", "npy")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".npy": "npy",
    ".npz": "npz",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_FORMAT_ALIASES = {"pq": "parquet", "ndjson": "jsonl"}


def format_from_path(path: str | os.PathLike) -> str:
    """The format named by the file extension (case-insensitive), e.g. "csv" for data.CSV."""
    p = os.fspath(path)
    ext = os.path.splitext(p)[1].lower()
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext]
    known = ", ".join(_EXTENSIONS)
    what = f"unknown file extension {ext!r}" if ext else "the file name has no extension"
    raise DataError(
        f"{what}; supported extensions: {known} (or give the format with --format / fmt=)", path=p
    )


def _normalize_fmt(fmt: str) -> str:
    """Accept "csv", ".csv", "CSV" and the aliases pq / ndjson; anything else is a DataError."""
    f = str(fmt).strip().lower().lstrip(".")
    f = _FORMAT_ALIASES.get(f, f)
    known = sorted(set(SUPPORTED_INPUT_FORMATS) | set(SUPPORTED_OUTPUT_FORMATS))
    if f not in known:
        raise DataError(f"unknown format {fmt!r}; use one of: {', '.join(known)}")
    return f


def _prepare_input(path: str | os.PathLike, fmt: str | None) -> tuple[str, str]:
    """Check the file exists, is a non-empty regular file and has a readable format."""
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise DataError("file not found; check the path", path=p) from None
    except OSError as e:
        raise DataError(f"cannot read the file ({e.strerror})", path=p) from None
    if stat.S_ISDIR(st.st_mode):
        raise DataError("is a directory, not a file; give the path of a data file", path=p)
    f = _normalize_fmt(fmt) if fmt is not None else format_from_path(p)
    if f not in SUPPORTED_INPUT_FORMATS:
        raise DataError(
            f"cannot read {f!r} files; readable formats: {', '.join(SUPPORTED_INPUT_FORMATS)}", path=p
        )
    if st.st_size == 0:
        raise DataError("the file is empty (0 bytes)", path=p)
    return p, f


def _pyarrow(action: str) -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:
        raise MissingDependencyError(f"{action} Parquet needs pyarrow: pip install 'adcore[parquet]'") from e
    return pa, pq
