"""What a job reads: the input files (a file, a directory, a glob; local or ``s3://``) and
how they are cut into partitions.

Files are taken in sorted order, so row numbers, part numbers and a seeded sample are the
same on every run. A Parquet file is cut at row-group boundaries (consecutive row groups up
to ``partition_rows`` rows; the footer says how many rows each holds, without reading data);
a CSV file is one partition, because only reading it tells where its rows are.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adcore.errors import DataError

from adcore_dask.storage import display_url, filesystem

#: Extensions read by this executor (others in a directory or glob are ignored).
FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
DEFAULT_PARTITION_ROWS = 1_000_000


@dataclass(frozen=True)
class InputFile:
    """One input file: its URL (a plain path when local), format and size in bytes."""

    url: str
    fmt: str
    size: int


@dataclass(frozen=True)
class Partition:
    """One task's share: a whole file, or consecutive row groups of a Parquet file.

    ``index`` numbers partitions across the whole input (it names the part file);
    ``first_row`` is the file row of its first row; ``n_rows`` is known from Parquet
    metadata, or after a counting pass for CSV (None until then).
    """

    index: int
    file: InputFile
    row_groups: tuple[int, ...] | None = None
    first_row: int = 0
    n_rows: int | None = None

    def with_rows(self, n_rows: int) -> Partition:
        return Partition(self.index, self.file, self.row_groups, self.first_row, n_rows)


def _format(name: str) -> str | None:
    return FORMATS.get(os.path.splitext(name)[1].lower())


def _hidden(path: str, root: str) -> bool:
    """Spark's and Dask's convention: names starting with ``_`` or ``.`` (markers, temp files)
    below the listed root are not data."""
    rel = path[len(root) :].lstrip("/") if path.startswith(root) else os.path.basename(path)
    return any(part.startswith(("_", ".")) for part in rel.split("/") if part)


def list_inputs(uri: str, options: Mapping[str, Any]) -> list[InputFile]:
    """The CSV/TSV/Parquet files ``uri`` names, sorted: a file, a directory (recursively) or a glob.

    A named file with another extension is refused; in a directory or a glob such files are
    skipped, as are names starting with ``_`` or ``.``. Nothing found is a ``DataError``.
    """
    fs, path = filesystem(uri, options)
    fs.invalidate_cache()  # s3fs caches listings per process: list what is there now
    found: dict[str, int] = {}
    try:
        if any(ch in path for ch in "*?["):
            matches = fs.glob(path, detail=True)
            for name, info in sorted(matches.items()):
                if info.get("type") == "directory":
                    found.update(_walk(fs, name))
                elif _format(name) is not None and not _hidden(name, os.path.dirname(name)):
                    found[name] = int(info.get("size") or 0)
        elif fs.isdir(path):
            found.update(_walk(fs, path))
            if not found:
                raise DataError("the directory holds no .csv, .tsv or .parquet files", path=uri)
        elif fs.isfile(path):
            if _format(path) is None:
                raise DataError(
                    f"cannot read {os.path.splitext(path)[1] or 'extension-less'} files with the dask "
                    "executor; give .csv, .tsv or .parquet files",
                    path=uri,
                )
            found[path] = int(fs.size(path) or 0)
        else:
            raise DataError("no such file or directory; check the path", path=uri)
    except (PermissionError, FileNotFoundError) as e:
        raise DataError(f"cannot list the input ({e})", path=uri) from None
    if not found:
        raise DataError("matches no .csv, .tsv or .parquet files", path=uri)
    return [
        InputFile(display_url(fs, name), _format(name) or "", size) for name, size in sorted(found.items())
    ]


def _walk(fs: Any, root: str) -> dict[str, int]:
    root = root.rstrip("/")
    out: dict[str, int] = {}
    for name, info in fs.find(root, detail=True).items():
        if _format(name) is not None and not _hidden(name, root):
            out[name] = int(info.get("size") or 0)
    return out


def parquet_partitions(
    file: InputFile, group_rows: Sequence[int], partition_rows: int, start: int
) -> list[Partition]:
    """Cut one Parquet file into runs of consecutive row groups of about ``partition_rows`` rows.

    A row group is never split; one larger than ``partition_rows`` is a partition alone.
    ``start`` is the index of the first partition. A file without rows gives one empty
    partition, so the reader reports it as the local executor would.
    """
    parts: list[Partition] = []
    groups: list[int] = []
    rows = first = offset = 0
    for g, n in enumerate(group_rows):
        if groups and rows + n > partition_rows:
            parts.append(Partition(start + len(parts), file, tuple(groups), first, rows))
            groups, rows, first = [], 0, offset
        groups.append(g)
        rows += n
        offset += n
    if groups or not parts:
        parts.append(Partition(start + len(parts), file, tuple(groups) or None, first, rows))
    return parts
