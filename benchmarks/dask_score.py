"""Benchmark scoring a big Parquet file: the local executor vs Dask on 1 and 2 workers.

The data: ``--rows`` x 20 float64 features (default 10,000,000; about 1.6 GB as Parquet),
written once in row groups of ``--partition-rows / 2`` rows and cached under ``--data-dir``
(default: the system temp directory), so later runs skip generation. Two models are fitted
on its first 100,000 rows and stored: ``core:hbos`` and ``pyod:iforest`` (skipped without
adcore-pyod).

For each model the same file is scored three ways, every one writing its scores to disk:

- ``local``: ``--executor local`` (one process, chunks of 100,000 rows, one output file);
- ``dask-1`` and ``dask-2``: ``--executor dask://?n_workers=K`` (a LocalCluster of K
  single-threaded worker processes), part files of ``--partition-rows`` rows. Each cluster is
  started and warmed (a small job, then the model loaded into every worker's cache) before
  the timed job, so the figures are scoring throughput, not cluster start-up (reported apart
  as ``startup_seconds``). The local run is warmed the same way (a small job first).

Reported: rows/s, speed-up over local, and the peak RSS of each worker process (psutil,
sampled every 50 ms) and of the local run's process. The goal on a 2-core machine: dask-2 at
least 1.7x local's rows/s, peak RSS under 1 GB per worker.

Usage::

    python benchmarks/dask_score.py --rows 200000 --output dask_score.json   # a quick look
    python benchmarks/dask_score.py --output dask_score.json                  # the real thing
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

N_FEATURES = 20
TRAIN_ROWS = 100_000
MODELS = ("core:hbos", "pyod:iforest")


def make_data(rows: int, row_group: int, data_dir: Path) -> Path:
    """The cached input file (written batch by batch: memory stays at one row group)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = data_dir / f"dask_score_{rows}x{N_FEATURES}_rg{row_group}.parquet"
    if path.exists():
        return path
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    rng = np.random.default_rng(0)
    schema = pa.schema([(f"f{j}", pa.float64()) for j in range(N_FEATURES)])
    with pq.ParquetWriter(tmp, schema) as writer:
        for start in range(0, rows, row_group):
            n = min(row_group, rows - start)
            X = rng.normal(size=(n, N_FEATURES))
            X[rng.random(n) < 0.01] *= 5  # 1% outliers
            writer.write_table(pa.table({f"f{j}": X[:, j] for j in range(N_FEATURES)}, schema=schema))
    os.replace(tmp, path)
    return path


def fit_models(data: Path, store: str, work: Path) -> list[str]:
    """Fit each available model on the first rows; returns the stored model names."""
    import pyarrow.parquet as pq

    import adcore

    train = work / "train.parquet"
    pq.write_table(pq.ParquetFile(data).read_row_groups([0]).slice(0, TRAIN_ROWS), train)
    names = []
    for algo in MODELS:
        try:
            adcore.fit(str(train), algo=algo, name=algo.replace(":", "-"), store=store, seed=0)
        except Exception as e:  # e.g. adcore-pyod not installed
            print(f"skipping {algo}: {e}", file=sys.stderr)
            continue
        names.append(algo.replace(":", "-"))
    return names


class PeakRss:
    """Samples the RSS of some processes every 50 ms in a thread; ``peaks`` in bytes per PID."""

    def __init__(self, pids: list[int]) -> None:
        import psutil

        self.procs = [psutil.Process(pid) for pid in pids]
        self.peaks = {pid: 0 for pid in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for proc in self.procs:
                with contextlib.suppress(Exception):  # a worker restarted or gone: keep what was seen
                    self.peaks[proc.pid] = max(self.peaks[proc.pid], proc.memory_info().rss)
            time.sleep(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_local(model: str, data: Path, warm: Path, store: str, work: Path) -> dict[str, Any]:
    from adcore.services.executors import LocalExecutor, ScoreJob

    LocalExecutor().score(ScoreJob(model=model, input=str(warm), output=None, store=store))  # imports
    out = work / f"local-{model}.parquet"
    with PeakRss([os.getpid()]) as rss:
        summary = LocalExecutor().score(ScoreJob(model=model, input=str(data), output=str(out), store=store))
    out.unlink(missing_ok=True)
    return {
        "executor": "local",
        "model": model,
        "rows": summary["n_rows"],
        "seconds": summary["seconds"],
        "rows_per_second": summary["n_rows"] / summary["seconds"],
        "peak_rss_mb": [round(max(rss.peaks.values()) / 2**20, 1)],
        "partitions": summary["partitions"],
    }


def run_dask(
    model: str, workers: int, data: Path, warm: Path, store: str, work: Path, part_rows: int
) -> dict[str, Any]:
    from adcore.services.executors import ScoreJob, open_executor

    started = time.perf_counter()
    executor = open_executor(f"dask://?n_workers={workers}&partition_rows={part_rows}")
    try:
        executor.score(ScoreJob(model=model, input=str(warm), output=None, store=store))  # start, imports
        pids = list(executor.preload(model, store).values())  # the model in every worker's cache
        startup = time.perf_counter() - started
        out = work / f"dask{workers}-{model}"
        with PeakRss(pids) as rss:
            summary = executor.score(ScoreJob(model=model, input=str(data), output=str(out), store=store))
        shutil.rmtree(out, ignore_errors=True)
    finally:
        executor.close()
    return {
        "executor": f"dask-{workers}",
        "model": model,
        "rows": summary["n_rows"],
        "seconds": summary["seconds"],
        "rows_per_second": summary["n_rows"] / summary["seconds"],
        "peak_rss_mb": [round(v / 2**20, 1) for v in rss.peaks.values()],
        "partitions": summary["partitions"],
        "startup_seconds": round(startup, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--partition-rows", type=int, default=None, help="default: min(1e6, rows/16)")
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "adcore-bench")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    parser.add_argument("--workers", default="1,2", help="Dask worker counts to run")
    parser.add_argument("--output", type=Path, default=Path("dask_score.json"))
    args = parser.parse_args(argv)

    part_rows = args.partition_rows or max(min(1_000_000, args.rows // 16), 10_000)
    row_group = max(part_rows // 2, 1_000)
    t0 = time.perf_counter()
    data = make_data(args.rows, row_group, args.data_dir)
    size = data.stat().st_size / 2**20
    print(f"data: {data} ({size:.0f} MiB, {time.perf_counter() - t0:.1f}s)", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="adcore-dask-bench-"))
    try:
        store = str(work / "store")
        warm = work / "warm.parquet"
        import pyarrow.parquet as pq

        pq.write_table(pq.ParquetFile(data).read_row_group(0).slice(0, 1_000), warm)
        wanted = [m.strip().replace(":", "-") for m in args.models.split(",") if m.strip()]
        models = [m for m in fit_models(data, store, work) if m in wanted]
        results = []
        for model in models:
            results.append(run_local(model, data, warm, store, work))
            for k in (int(w) for w in args.workers.split(",")):
                results.append(run_dask(model, k, data, warm, store, work, part_rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    local = {r["model"]: r["rows_per_second"] for r in results if r["executor"] == "local"}
    head = f"{'model':<14}{'executor':<9}{'rows':>12}{'seconds':>9}{'rows/s':>12}{'x local':>8}"
    print(f"\n{head}  peak RSS MB")
    for r in results:
        r["speedup"] = round(r["rows_per_second"] / local[r["model"]], 2)
        rss = ", ".join(f"{v:.0f}" for v in r["peak_rss_mb"])
        print(
            f"{r['model']:<14}{r['executor']:<9}{r['rows']:>12,}{r['seconds']:>9.2f}"
            f"{r['rows_per_second']:>12,.0f}{r['speedup']:>8.2f}  {rss}"
        )
    report = {
        "command": "python benchmarks/dask_score.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "rows": args.rows,
        "features": N_FEATURES,
        "partition_rows": part_rows,
        "row_group_rows": row_group,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "results": results,
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # spawned Dask workers re-import this module: run only when executed
    sys.exit(main())
