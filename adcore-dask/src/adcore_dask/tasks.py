"""What runs on the workers: plan a file, count its rows, score a partition, take sample rows.

Every function here is a plain module-level function with small, picklable arguments (the
partition, a :class:`~adcore_dask.model_cache.ModelRef`, the read options), so Dask ships a
reference to it and a few hundred bytes per task. Rows are read through the core's own
reader (:mod:`adcore.io.partitions`): the same parsing and checks as ``--executor local``.

A file the reader refuses (corrupt, not the model's columns) is a "bad file": the task
returns :class:`BadFile` naming it, and the client fails the job with that line
(``on_bad_file="error"``) or leaves the file out (``"skip"``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from adcore.errors import AdcoreError, DataError

from adcore_dask.inputs import InputFile, Partition
from adcore_dask.model_cache import ModelRef, get_model, loads
from adcore_dask.outputs import OutputDir, write_part
from adcore_dask.parts import PartWriter
from adcore_dask.storage import filesystem, is_local, local_path

T = TypeVar("T")
KEEP_TOP = 10
_READ_BLOCK = 8 * 2**20  # remote reads in 8 MiB ranges: few requests, bounded memory


@dataclass(frozen=True)
class ReadSpec:
    """How every file is read: as the model's training file was (columns, header), and the NaN policy."""

    columns: tuple[str, ...] | None
    header: bool | None
    nan_policy: str
    chunk_size: int


@dataclass(frozen=True)
class BadFile:
    """A file the reader refused, with its one-line reason (which names the file): the job
    fails with it (``on_bad_file="error"``) or leaves the file out (``"skip"``)."""

    url: str
    reason: str


@dataclass
class PartResult:
    """One scored partition: counts, extremes, its top anomalies (score, file row, confidence)."""

    index: int
    url: str
    first_row: int
    n_rows: int
    n_scored: int
    n_anomalies: int
    score_min: float | None
    score_max: float | None
    top: list[tuple[float, int, float]] = field(default_factory=list)
    part: str | None = None
    model_loads: int = 0
    pid: int = 0
    seconds: float = 0.0


@dataclass
class Taken:
    """The rows a partition contributes to a fit, in input order."""

    index: int
    url: str
    X: np.ndarray
    feature_names: list[str]
    n_input_rows: int


# ------------------------------------------------------------------------- reading
@contextlib.contextmanager
def _opened(file: InputFile, options: Mapping[str, Any]) -> Iterator[Any]:
    """A local path as is (pyarrow and the CSV reader open it natively), or an fsspec file."""
    if is_local(file.url):
        yield local_path(file.url)
        return
    fs, path = filesystem(file.url, options)
    with fs.open(path, "rb", block_size=_READ_BLOCK) as fh:
        yield fh


def _chunks(part: Partition, fh: Any, read: ReadSpec) -> Iterator[Any]:
    from adcore.io.partitions import iter_partition_chunks

    return iter_partition_chunks(
        fh,
        part.file.url,
        part.file.fmt,
        chunk_size=read.chunk_size,
        columns=list(read.columns) if read.columns is not None else None,
        header=read.header,
        nan_policy=read.nan_policy,
        row_groups=part.row_groups,
        first_row=part.first_row,
    )


def _guard(file: InputFile, work: Callable[[], T]) -> T | BadFile:
    """Run ``work``; a file the reader refuses becomes a :class:`BadFile` naming it.

    Returned, not raised: the client decides (fail or skip), and workers' logs do not fill
    with tracebacks of the user's data errors.
    """
    try:
        return work()
    except AdcoreError as exc:
        reason = str(exc) if file.url in str(exc) else str(DataError(str(exc), path=file.url))
        return BadFile(file.url, reason.splitlines()[0] if reason else type(exc).__name__)
    except Exception as exc:  # pyarrow's own errors on a corrupt file, outside the reader's checks
        if type(exc).__module__.startswith("pyarrow"):
            return BadFile(file.url, str(DataError(f"cannot be read ({exc})", path=file.url)).splitlines()[0])
        raise


# --------------------------------------------------------------------------- tasks
def parquet_layout(file: InputFile, options: Mapping[str, Any]) -> list[int] | BadFile:
    """Rows per row group from the file's footer (a few KiB read, no data pages)."""
    from adcore.io.partitions import parquet_row_group_sizes

    def work() -> list[int]:
        with _opened(file, options) as fh:
            return parquet_row_group_sizes(fh, file.url)

    return _guard(file, work)


def count_rows(part: Partition, read: ReadSpec, options: Mapping[str, Any]) -> int | BadFile:
    """Input rows of a CSV partition, counted by reading it as scoring will (blank lines, quoted
    newlines and a header are not rows), so a sample drawn from the counts lands on real rows."""

    def work() -> int:
        with _opened(part.file, options) as fh:
            return sum(chunk.n_input_rows for chunk in _chunks(part, fh, read))

    return _guard(part.file, work)


def take_rows(
    part: Partition, rows: np.ndarray | None, read: ReadSpec, options: Mapping[str, Any]
) -> Taken | BadFile:
    """The feature rows at partition positions ``rows`` (sorted; None = all) that the NaN
    policy kept, as :func:`adcore.services.executors.sample_dataset` takes them from one file."""

    def work() -> Taken:
        parts: list[np.ndarray] = []
        names: list[str] = []
        n_input = 0
        with _opened(part.file, options) as fh:
            for chunk in _chunks(part, fh, read):
                names = list(chunk.feature_names)
                lo = chunk.first_row - part.first_row
                n_input += chunk.n_input_rows
                if rows is None:
                    parts.append(chunk.X)
                    continue
                a, b = np.searchsorted(rows, [lo, lo + chunk.n_input_rows])
                drawn = rows[a:b] - lo
                if chunk.kept_rows is None:
                    parts.append(chunk.X[drawn])
                else:
                    parts.append(chunk.X[np.flatnonzero(np.isin(chunk.kept_rows, drawn))])
        width = len(names)
        X = np.concatenate(parts) if parts else np.empty((0, width))
        return Taken(part.index, part.file.url, np.ascontiguousarray(X), names, n_input)

    return _guard(part.file, work)


def score_partition(
    part: Partition,
    model_ref: ModelRef,
    read: ReadSpec,
    out: OutputDir | None,
    options: Mapping[str, Any],
) -> PartResult | BadFile:
    """Score one partition with the worker's cached model and publish its part file whole."""
    from adcore.services.scoring import ScoreSummary

    started = time.perf_counter()
    model = get_model(model_ref)  # a store or model problem is the job's, not this file's
    summary = ScoreSummary(model.ref)

    def scored(fh: Any) -> Iterator[tuple[Any, np.ndarray, np.ndarray]]:
        for chunk in _chunks(part, fh, read):
            scores, labels = model.score_dataset(chunk)
            summary.add(
                chunk.first_row,
                chunk.kept_rows,
                scores,
                labels,
                chunk.n_input_rows,
                KEEP_TOP,
                model.confidence,
            )
            yield chunk, scores, labels

    def fill(target: str) -> None:
        with _opened(part.file, options) as fh, PartWriter(target, out.fmt, part.file.url) as writer:
            for chunk, scores, labels in scored(fh):
                writer.write(chunk, scores, labels)

    def work() -> str | None:
        if out is None:
            with _opened(part.file, options) as fh:
                for _ in scored(fh):
                    pass
            return None
        return write_part(out, part.index, options, fill)

    written = _guard(part.file, work)
    if isinstance(written, BadFile):
        return written
    return PartResult(
        index=part.index,
        url=part.file.url,
        first_row=part.first_row,
        n_rows=summary.n_rows,
        n_scored=summary.n_scored,
        n_anomalies=summary.n_anomalies,
        score_min=summary.score_min if summary.n_scored else None,
        score_max=summary.score_max if summary.n_scored else None,
        top=[(s, -neg_row, c) for s, neg_row, c in summary.top],
        part=written,
        model_loads=loads(model_ref),
        pid=os.getpid(),
        seconds=time.perf_counter() - started,
    )
