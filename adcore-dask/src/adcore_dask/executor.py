"""``DaskExecutor``: ``adcore score``/``fit``/``run --executor dask[://HOST:PORT]``.

The client (where the CLI runs) lists the input files, checks the output directory, resolves
the model to ``name@version`` and its checksum, and plans partitions; the workers read,
score and write. A job is a flat set of independent tasks, one per partition, with no
shuffles: the scheduler's work grows with the number of partitions, never with rows.

Scoring: one task per partition, each writing its own part file; ``_SUCCESS`` is written by
the client once every part is in place. Fitting: the rows of a uniform sample (or all rows)
are gathered to the client in input order and fitted there through
:func:`adcore.services.executors.fit_and_save`, the same road as ``adcore fit``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from adcore.errors import DataError, ParameterError
from adcore.services.executors import (
    FitJob,
    FitOutcome,
    Progress,
    ScoreJob,
    check_bad_file_policy,
    check_sample,
    fit_and_save,
)

from adcore_dask.cluster import ClusterSpec, SchedulerUnreachableError, connect, dashboard_url, parse_executor
from adcore_dask.inputs import InputFile, Partition, list_inputs, parquet_partitions
from adcore_dask.model_cache import ModelRef
from adcore_dask.outputs import (
    OutputDir,
    clean_temporaries,
    prepare_output,
    remove_parts,
    write_success,
)
from adcore_dask.tasks import (
    KEEP_TOP,
    BadFile,
    PartResult,
    ReadSpec,
    Taken,
    count_rows,
    parquet_layout,
    score_partition,
    take_rows,
)

FIT_CHUNK = 100_000


class DaskExecutor:
    """Runs batch jobs on a Dask cluster: a local one it starts, or a scheduler it connects to.

    The connection is made on the first job (so a bad input or output is reported without
    waiting for a cluster) and kept until :meth:`close`.
    """

    name = "dask"

    def __init__(self, text: str = "dask") -> None:
        self.text = text
        self.spec: ClusterSpec = parse_executor(text)
        self._client: Any = None
        self._cluster: Any = None

    # ----------------------------------------------------------------- cluster
    def _connect(self, progress: Progress) -> tuple[Any, str | None, int]:
        if self._client is None:
            self._client, self._cluster = connect(self.spec)
            try:
                self._client.wait_for_workers(1, timeout=self.spec.worker_timeout)
            except (TimeoutError, OSError):
                where = self.spec.address or "the local cluster"
                self.close()
                raise SchedulerUnreachableError(
                    f"the Dask scheduler at {where} has no workers after {self.spec.worker_timeout:g}s; "
                    "start some with `dask worker`"
                ) from None
        link = dashboard_url(self._client)
        if link:
            progress.said(f"dashboard: {link}")
        return self._client, link, len(self._client.nthreads())

    def preload(self, model: str, store: str | None = None) -> dict[str, int]:
        """Load ``model`` on every worker now (connecting first); returns worker address -> PID.

        Jobs load it on first use anyway; this moves that cost out of a timed job (the
        benchmark) or ahead of a burst of jobs.
        """
        from adcore_dask.model_cache import preload

        model_ref, _ = _resolve_model(model, store)
        client, _, _ = self._connect(Progress())
        return dict(client.run(preload, model_ref))

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` once a job has connected (None before): for tools such as
        the benchmark, which reads the workers' PIDs."""
        return self._client

    def close(self) -> None:
        """Disconnect, and stop the local cluster if this executor started one."""
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ score
    def score(self, job: ScoreJob, progress: Progress | None = None) -> dict[str, Any]:
        """Score every row of every input file; write part files and ``_SUCCESS`` to ``job.output``."""
        progress = progress or Progress()
        started = time.perf_counter()
        policy = check_bad_file_policy(job.on_bad_file)
        if job.stream is not None:
            raise ParameterError(
                "the dask executor writes part files into a directory: give --output DIR, not stdout"
            )
        _refuse_median(job.nan_policy)
        options = dict(job.storage_options)
        files = list_inputs(job.input, options)
        model_ref, record = _resolve_model(job.model, job.store)
        opts = record.read_options or {}
        columns = job.columns if job.columns is not None else opts.get("columns")
        read = ReadSpec(
            tuple(columns) if columns else None,
            job.header if job.header is not None else opts.get("header"),
            job.nan_policy,
            job.chunk_size,
        )
        out = None
        if job.output is not None:
            out = prepare_output(job.output, job.fmt, options, input_uri=job.input)
        client, link, workers = self._connect(progress)
        partitions: list[Partition] = []
        try:
            partitions, skipped = self._plan(client, files, read, policy, options, counts=False)
            progress.started(len(partitions), "partitions")
            futures = client.map(
                score_partition,
                partitions,
                model_ref=model_ref,
                read=read,
                out=out,
                options=options,
                pure=False,
            )
            results = _collect(client, futures, progress, policy)
        except BaseException:
            if out is not None:  # nothing of a failed job stays: the directory can be used again
                remove_parts(out, options, [p.index for p in partitions])
                clean_temporaries(out)
            raise
        skipped = _unique([*skipped, *(r for r in results if isinstance(r, BadFile))])
        bad = {s.url for s in skipped}
        done = sorted((r for r in results if isinstance(r, PartResult) and r.url not in bad), key=_by_index)
        if out is not None:
            # A file skipped in one partition leaves none of its rows: its other parts go too.
            remove_parts(
                out, options, [r.index for r in results if isinstance(r, PartResult) and r.url in bad]
            )
            clean_temporaries(out)
        if not done:
            raise _all_skipped(skipped, job.input)
        summary = _score_summary(done, record, out, skipped, workers, link, time.perf_counter() - started)
        if out is not None:
            write_success(out, options, {**summary, "top_anomalies": None, "parts": [r.part for r in done]})
        return summary

    # -------------------------------------------------------------------- fit
    def fit(self, job: FitJob, progress: Progress | None = None) -> FitOutcome:
        """Fit on a uniform sample (``job.sample``) or every row, gathered here, and store the model."""
        from adcore.services.registry import check_model_name

        from adcore_dask.sampling import assemble, sample_plan

        progress = progress or Progress()
        started = time.perf_counter()
        check_model_name(job.model)  # before reading anything, not after the sample
        check_sample(job.sample)
        policy = check_bad_file_policy(job.on_bad_file)
        _refuse_median(job.nan_policy)
        options = dict(job.storage_options)
        files = list_inputs(job.input, options)
        read = ReadSpec(tuple(job.columns) if job.columns else None, job.header, job.nan_policy, FIT_CHUNK)
        client, link, workers = self._connect(progress)
        partitions, skipped = self._plan(client, files, read, policy, options, counts=True)
        total = sum(int(p.n_rows or 0) for p in partitions)
        if job.sample is None and total > self.spec.max_fit_rows:
            raise ParameterError(
                f"fitting on all {total:,} rows would gather them on this machine; fit on a sample "
                f"with --sample N (e.g. --sample 1000000), or raise the bound: ?max_fit_rows={total}"
            )
        plan = sample_plan(partitions, job.sample, job.spec.seed)
        progress.started(len(plan), "partitions")
        futures = [client.submit(take_rows, part, rows, read, options, pure=False) for part, rows in plan]
        results = _collect(client, futures, progress, policy)
        skipped = _unique([*skipped, *(r for r in results if isinstance(r, BadFile))])
        bad = {s.url for s in skipped}
        taken = [r for r in results if isinstance(r, Taken) and r.url not in bad]
        if not taken:
            raise _all_skipped(skipped, job.input)
        dataset = assemble(taken, job.input)
        record = fit_and_save(job, dataset)
        summary = {
            "executor": self.name,
            "model": record.ref,
            "n_rows": total - sum(int(p.n_rows or 0) for p in partitions if p.file.url in bad),
            "n_sampled": dataset.n_samples,
            "partitions": len(plan),
            "files": len({p.file.url for p, _ in plan} - bad),
            "workers": workers,
            "skipped_files": [s.url for s in skipped],
            "skipped": [{"file": s.url, "reason": s.reason} for s in skipped],
            "dashboard": link,
            "seconds": round(time.perf_counter() - started, 6),
        }
        return FitOutcome(record, summary)

    # ------------------------------------------------------------------- plan
    def _plan(
        self,
        client: Any,
        files: Sequence[InputFile],
        read: ReadSpec,
        policy: str,
        options: Mapping[str, Any],
        *,
        counts: bool,
    ) -> tuple[list[Partition], list[BadFile]]:
        """Partitions in input order (Parquet footers read on the workers, in parallel); with
        ``counts``, CSV files are read once more to count their rows (for a sample)."""
        parquet = [f for f in files if f.fmt == "parquet"]
        futures = client.map(parquet_layout, parquet, options=options, pure=False)
        layouts = dict(
            zip([f.url for f in parquet], _collect(client, futures, Progress(), policy), strict=True)
        )
        partitions: list[Partition] = []
        skipped: list[BadFile] = []
        for file in files:
            layout = layouts.get(file.url)
            if isinstance(layout, BadFile):
                skipped.append(layout)
            elif layout is None:  # CSV: one partition, rows unknown until read
                partitions.append(Partition(len(partitions), file))
            else:
                partitions += parquet_partitions(file, layout, self.spec.partition_rows, len(partitions))
        unknown = [p for p in partitions if p.n_rows is None]
        if counts and unknown:
            futures = client.map(count_rows, unknown, read=read, options=options, pure=False)
            found = dict(
                zip([p.index for p in unknown], _collect(client, futures, Progress(), policy), strict=True)
            )
            skipped += [n for n in found.values() if isinstance(n, BadFile)]
            partitions = [
                p if p.n_rows is not None else p.with_rows(int(found[p.index]))
                for p in partitions
                if not isinstance(found.get(p.index), BadFile)
            ]
        if not partitions:
            raise _all_skipped(skipped, None)
        return partitions, skipped


# ------------------------------------------------------------------------ helpers
def _resolve_model(model: str, store: str | None) -> tuple[ModelRef, Any]:
    """``name[@version]`` -> the exact version and checksum the workers must load (index only)."""
    from adcore.services.registry import open_store, parse_model_ref, store_url, url_scheme

    name, version = parse_model_ref(model)
    url = store_url(store)
    if url_scheme(url) == "file" and "://" not in url:  # workers have their own working directory
        url = os.path.abspath(os.path.expanduser(url))
    with contextlib.closing(open_store(url, create=False)) as opened:
        record = opened.get(name, version)
    return ModelRef(record.ref, url, record.sha256), record


def _refuse_median(nan_policy: str) -> None:
    if nan_policy == "median":
        raise ParameterError(
            "--nan median needs whole columns, which the dask executor never holds in one place; "
            "use --nan drop or --nan error"
        )


def _collect(client: Any, futures: Sequence[Any], progress: Progress, policy: str) -> list[Any]:
    """Results in the order given, advancing ``progress`` as each finishes.

    A bad file under ``on_bad_file="error"`` fails the job at once with its one line (a
    ``DataError`` naming the file); so does a task's own exception. Either way the tasks
    still queued are cancelled.
    """
    from distributed import as_completed

    if not futures:
        return []
    try:
        for future in as_completed(futures):
            result = future.result()  # raises the task's exception
            if isinstance(result, BadFile) and policy == "error":
                raise DataError(result.reason)
            progress.advanced(1)
        return client.gather(list(futures))
    except BaseException:
        with contextlib.suppress(Exception):
            client.cancel(list(futures))
            _wait_until_stopped(client, [f.key for f in futures])
        raise


def _wait_until_stopped(client: Any, keys: list[Any], timeout: float = 60.0) -> None:
    """Wait (bounded) until no worker still runs one of ``keys``.

    Cancelling a task that is already running only discards its result: the worker's thread
    goes on and may still write its part after the job's clean-up removed the others, which
    would leave the output directory unusable. Workers count such cancelled-but-running
    tasks in ``state.executing`` until their thread returns.
    """
    wanted = {str(k) for k in keys}

    def running(dask_worker: Any, wanted: set[str] = wanted) -> int:
        return sum(str(ts.key) in wanted for ts in dask_worker.state.executing)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not sum(client.run(running).values()):
            return
        time.sleep(0.05)


def _unique(skipped: Sequence[BadFile]) -> list[BadFile]:
    """One entry per file (several partitions of one bad file each report it)."""
    seen: dict[str, BadFile] = {}
    for s in skipped:
        seen.setdefault(s.url, s)
    return list(seen.values())


def _by_index(result: PartResult) -> int:
    return result.index


def _all_skipped(skipped: Sequence[BadFile], where: str | None) -> DataError:
    """Nothing left to read: the first reasons, so the user sees what is wrong with the files."""
    shown = "; ".join(s.reason for s in skipped[:3])
    more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
    return DataError(f"every input file was skipped as unreadable: {shown}{more}", path=where)


def _score_summary(
    done: Sequence[PartResult],
    record: Any,
    out: OutputDir | None,
    skipped: Sequence[BadFile],
    workers: int,
    link: str | None,
    seconds: float,
) -> dict[str, Any]:
    """The CLI's summary: the local executor's keys, plus partitions, workers and skipped files.

    Top anomalies merge every partition's top list: highest score first, ties in input
    order; ``index`` is the row's place in the whole input (files in sorted order), ``source``
    and ``row`` its file and row there.
    """
    offsets: dict[int, int] = {}
    total = 0
    for r in done:
        offsets[r.index] = total
        total += r.n_rows
    candidates = [(s, r.index, row, c, r) for r in done for s, row, c in r.top]
    candidates.sort(key=lambda t: (-t[0], t[1], t[2]))
    scored = [r for r in done if r.n_scored]
    n_scored = sum(r.n_scored for r in done)
    pids: dict[int, int] = {}
    for r in done:
        pids[r.pid] = max(pids.get(r.pid, 0), r.model_loads)
    return {
        "executor": "dask",
        "model": record.ref,
        "threshold": record.threshold,
        "n_rows": total,
        "n_scored": n_scored,
        "n_anomalies": sum(r.n_anomalies for r in done),
        "score_min": min((r.score_min for r in scored if r.score_min is not None), default=None),
        "score_max": max((r.score_max for r in scored if r.score_max is not None), default=None),
        "seconds": round(seconds, 6),
        "rows_per_second": round(total / seconds, 1) if seconds > 0 else None,
        "output": out.url if out is not None else None,
        "format": out.fmt if out is not None else None,
        "top_anomalies": [
            {
                "index": offsets[r.index] + (row - r.first_row),
                "source": r.url,
                "row": row,
                "score": s,
                "confidence": c,
            }
            for s, _, row, c, r in candidates[:KEEP_TOP]
        ],
        "partitions": len(done),
        "files": len({r.url for r in done}),
        "workers": workers,
        "model_loads": sum(pids.values()),
        "skipped_files": [s.url for s in skipped],
        "skipped": [{"file": s.url, "reason": s.reason} for s in skipped],
        "dashboard": link,
    }
