"""Batch executors: who runs a fit or a scoring job over files, on one machine or a cluster.

``adcore score``/``fit``/``run --executor NAME`` hand the job to an executor registered
through the ``register_executors`` port; nothing in an executor needs the CLI. The core's
own ``local`` executor is the chunked path of :func:`adcore.services.scoring.score_file`
and :func:`adcore.services.models.fit_spec`: one process, one input file, bounded memory.
A distributed executor (``adcore-dask``: ``--executor dask`` or ``dask://HOST:PORT``)
receives the same job objects and must keep the same results: the same model scores the
same rows with the same bits (it loads the model from the store once per worker, with the
integrity check, rather than pickling it into tasks), and a sample for ``fit --sample N``
is the same rows whatever the partitioning (:func:`sample_indices`).

The executor's text is a name (``local``, ``dask``) or a URL whose scheme names it
(``dask://scheduler:8786``); the factory receives the whole text.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import numpy as np

from adcore.errors import ParameterError

LOCAL_EXECUTOR = "local"
EXECUTOR_ENV = "ADCORE_EXECUTOR"
BAD_FILE_POLICIES = ("error", "skip")
_MAX_SAMPLE = 2**62


# ------------------------------------------------------------------------------- jobs
@dataclass(frozen=True)
class ScoreJob:
    """Score every row of ``input`` with the stored model ``model`` and write ``output``.

    ``input``/``output`` are URIs: a local path, or what the executor reads (a directory, a
    glob, ``s3://``). ``output=None`` scores for the summary only. ``stream`` (an open binary
    file, e.g. stdout) receives the rows instead of ``output``: only in-process executors
    accept it. ``columns``/``header`` default to how the model's training file was read.
    ``storage_options`` are fsspec options for remote files (``key``, ``endpoint_url``...),
    on top of the standard AWS environment variables. ``loaded_model``: the
    :class:`~adcore.services.models.Model` the caller already loaded and checked, which an
    in-process executor may use instead of loading ``model`` again.
    """

    model: str
    input: str
    output: str | None = None
    store: str | None = None
    chunk_size: int = 100_000
    columns: list[str] | None = None
    header: bool | None = None
    nan_policy: str = "error"
    fmt: str | None = None
    on_bad_file: str = "error"
    storage_options: Mapping[str, str] = field(default_factory=dict)
    stream: IO[bytes] | None = None
    loaded_model: Any = None
    p_values: bool = False  # a p_value column (a calibrated model; in-process executors only)


@dataclass(frozen=True)
class FitJob:
    """Fit the detector ``spec`` (a :class:`~adcore.services.spec.DetectorSpec`) on ``input``
    and store it as the next version of ``model`` in ``store``.

    ``sample``: fit on that many rows drawn uniformly across the whole input, seeded by
    ``spec.seed`` (:func:`sample_indices`), instead of on every row.
    """

    spec: Any
    input: str
    model: str
    store: str | None = None
    sample: int | None = None
    columns: list[str] | None = None
    header: bool | None = None
    nan_policy: str = "error"
    on_bad_file: str = "error"
    storage_options: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Progress:
    """How an executor reports while it works (the CLI draws a bar from it; all optional).

    ``start(total, unit)`` once the amount of work is known (``total`` None if not);
    ``advance(n)`` as units finish; ``info(line)`` for a line worth showing at once, such
    as a cluster's dashboard address.
    """

    start: Callable[[int | None, str], object] | None = None
    advance: Callable[[int], object] | None = None
    info: Callable[[str], object] | None = None

    def started(self, total: int | None, unit: str) -> None:
        if self.start is not None:
            self.start(total, unit)

    def advanced(self, n: int) -> None:
        if self.advance is not None:
            self.advance(n)

    def said(self, line: str) -> None:
        if self.info is not None:
            self.info(line)


@dataclass
class FitOutcome:
    """A fit job's result: the stored record, and what the executor did (JSON-safe)."""

    record: Any
    summary: dict[str, Any]


class Executor(Protocol):
    """What ``register_executors`` factories return.

    ``score`` returns a JSON-safe summary with at least ``model``, ``n_rows``, ``n_scored``,
    ``n_anomalies``, ``score_min``, ``score_max``, ``seconds``, ``output`` and
    ``top_anomalies`` (possibly empty), plus what the executor adds (``partitions``,
    ``workers``, ``skipped_files``, ``dashboard``). ``fit`` stores the model through
    :func:`fit_and_save` and returns a :class:`FitOutcome`. User errors raise
    ``adcore.errors`` types (exit code 2); ``close`` releases what the executor started.
    """

    name: str

    def score(self, job: ScoreJob, progress: Progress | None = None) -> dict[str, Any]: ...

    def fit(self, job: FitJob, progress: Progress | None = None) -> FitOutcome: ...

    def close(self) -> None: ...


# -------------------------------------------------------------------------- helpers
def executor_name(text: str) -> str:
    """``dask://host:8786``, ``dask`` and ``dask?n_workers=2`` -> ``dask``; ``LOCAL`` -> ``local``."""
    text = text.strip()
    if not text:
        raise ParameterError("--executor is empty: give local, or a plugin's name such as dask")
    scheme, sep, _ = text.partition("://")
    return (scheme if sep else text.partition("?")[0]).lower()


def default_executor() -> str:
    return os.environ.get(EXECUTOR_ENV, "").strip() or LOCAL_EXECUTOR


def open_executor(text: str | None = None) -> Executor:
    """The executor named by ``text`` (default ``$ADCORE_EXECUTOR``, else ``local``).

    An unknown name is a ``ParameterError`` naming the installed executors, or the
    distribution that provides it (``pip install adcore-dask``).
    """
    from adcore.plugins import get_host

    text = default_executor() if text is None else text
    host = get_host()
    registration = host.resolve_scheme("executor", text, scheme=executor_name(text))
    return registration.load()(text)


def check_bad_file_policy(policy: str) -> str:
    if policy not in BAD_FILE_POLICIES:
        raise ParameterError(f"--on-bad-file must be one of {', '.join(BAD_FILE_POLICIES)}, got {policy!r}")
    return policy


def check_sample(sample: int | None) -> int | None:
    if sample is not None and not 2 <= sample < _MAX_SAMPLE:
        raise ParameterError(f"--sample must be at least 2 rows, got {sample}")
    return sample


def sample_indices(counts: Sequence[int], n: int | None, seed: int | None) -> list[np.ndarray]:
    """Which rows of each partition a uniform sample of ``n`` rows takes, sorted per partition.

    The draw is over global row numbers (partition after partition, in the order given),
    so the same input rows in the same order give the same sample however they are cut
    into partitions: the local executor's one file and a cluster's row groups agree.
    ``n`` None, or at least the total, takes every row.
    """
    counts = [int(c) for c in counts]
    if any(c < 0 for c in counts):
        raise ValueError(f"negative partition size in {counts}")
    total = sum(counts)
    if n is None or n >= total:
        return [np.arange(c, dtype=np.int64) for c in counts]
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(total, size=n, replace=False)).astype(np.int64)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    cuts = np.searchsorted(chosen, bounds)
    return [chosen[cuts[i] : cuts[i + 1]] - bounds[i] for i in range(len(counts))]


def sample_dataset(dataset: Any, n: int, seed: int | None) -> Any:
    """The rows of ``dataset`` that :func:`sample_indices` draws from its input rows.

    The draw is over input rows, as a cluster draws it from file metadata before reading;
    drawn rows that the NaN policy dropped stay out, so the sample may be a few rows short.
    """
    from adcore.data import Dataset

    (drawn,) = sample_indices([dataset.n_input_rows], n, seed)
    if dataset.kept_rows is None:
        positions = drawn
    else:
        kept = np.asarray(dataset.kept_rows)
        positions = np.flatnonzero(np.isin(kept, drawn))
    return Dataset(
        np.ascontiguousarray(dataset.X[positions]), list(dataset.feature_names), source=dataset.source
    )


def fit_and_save(job: FitJob, dataset: Any, *, read_from: Any = None) -> Any:
    """Fit ``job.spec`` on ``dataset`` (an :class:`adcore.data.Dataset`) and store it: the one
    road every executor's fit ends on, so a model fitted on a cluster's sample is the same
    object, with the same schema and checks, as one fitted by ``adcore fit``.

    ``read_from`` is what the training schema records as the source (default ``job.input``).
    Returns the stored :class:`~adcore.services.registry.ModelRecord`.
    """
    import contextlib

    from adcore.domain.schema import TrainingSchema
    from adcore.services.models import fit_model
    from adcore.services.registry import check_model_name, open_store

    check_model_name(job.model)
    detector = job.spec.build()
    with contextlib.closing(open_store(job.store)) as opened:
        schema = TrainingSchema.from_dataset(
            dataset,
            read_from if read_from is not None else job.input,
            columns=job.columns,
            header=job.header,
            nan_policy=job.nan_policy,
        )
        return fit_model(detector, dataset, schema, name=job.model).save(job.model, store=opened)


# ---------------------------------------------------------------------- the local one
class LocalExecutor:
    """Today's one-process path: one local file, read and scored in chunks of bounded size."""

    name = LOCAL_EXECUTOR

    def __init__(self, url: str = LOCAL_EXECUTOR) -> None:
        if url.strip().lower() not in (LOCAL_EXECUTOR, f"{LOCAL_EXECUTOR}://"):
            raise ParameterError(f"the local executor takes no address, got {url!r}: use --executor local")

    def score(self, job: ScoreJob, progress: Progress | None = None) -> dict[str, Any]:
        from adcore.services.models import load_model
        from adcore.services.scoring import score_file

        progress = progress or Progress()
        _refuse_remote(job.input, job.storage_options)
        model = job.loaded_model if job.loaded_model is not None else load_model(job.model, job.store)
        progress.started(None, "rows")
        summary = score_file(
            model,
            job.input,
            job.output,
            chunk_size=job.chunk_size,
            columns=job.columns,
            header=job.header,
            nan_policy=job.nan_policy,
            fmt=job.fmt,
            stream=job.stream,
            on_chunk=progress.advanced,
            p_values=job.p_values,
        )
        payload = summary.to_dict()
        payload.update(
            executor=self.name, partitions=payload["chunks"], workers=1, threshold=model.threshold
        )
        return payload

    def fit(self, job: FitJob, progress: Progress | None = None) -> FitOutcome:
        from adcore.data import read_dataset

        _refuse_remote(job.input, job.storage_options)
        check_sample(job.sample)
        started = time.perf_counter()
        dataset = read_dataset(
            job.input, columns=job.columns, header=job.header, nan_policy=job.nan_policy, min_rows=2
        )
        n_rows = dataset.n_input_rows
        if job.sample is not None and job.sample < n_rows:
            dataset = sample_dataset(dataset, job.sample, job.spec.seed)
        record = fit_and_save(job, dataset)
        summary = {
            "executor": self.name,
            "n_rows": n_rows,
            "n_sampled": dataset.n_samples,
            "partitions": 1,
            "workers": 1,
            "seconds": round(time.perf_counter() - started, 6),
        }
        return FitOutcome(record, summary)

    def close(self) -> None:
        """Nothing to release: the local executor starts nothing."""


def _refuse_remote(uri: str, storage_options: Mapping[str, str]) -> None:
    """The local executor reads one local file; say what reads the rest."""
    if "://" in uri or any(ch in uri for ch in "*?[") or os.path.isdir(uri):
        raise ParameterError(
            f"the local executor reads one local file, not {uri!r}: for directories, globs and s3:// "
            "use --executor dask (pip install adcore-dask)"
        )
    if storage_options:
        raise ParameterError(
            "--storage-option applies to remote inputs (s3://): the local executor reads local files"
        )
