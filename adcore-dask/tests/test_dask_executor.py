"""The dask executor against a real cluster (scheduler + 2 workers) and moto's S3, no mocks.

What must hold: the same scores as ``--executor local``, bit for bit; every input row exactly
once in the output even when a worker is SIGKILLed mid-job; bad files fail the job naming the
file or are skipped and listed; an unreachable scheduler fails fast naming its address; a
seeded sample takes the same rows as the local executor's; listing plugins imports no dask.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import adcore
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from adcore.errors import AdcoreError, DataError
from adcore.services.executors import FitJob, LocalExecutor, Progress, ScoreJob, open_executor
from adcore.services.models import load_model
from adcore.services.spec import detector_spec
from servers import DaskCluster, S3Server, free_port

pytestmark = pytest.mark.service

FEATURES = ["f0", "f1", "f2", "f3", "f4"]


# ----------------------------------------------------------------------------- data
def _frame(n: int, seed: int, start: int = 0) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(FEATURES)))
    X[rng.choice(n, size=max(n // 50, 1), replace=False)] *= 6  # some anomalies
    return {"id": [f"r{start + i}" for i in range(n)], **{f: X[:, j] for j, f in enumerate(FEATURES)}}


def write_parquet(path: Path, n: int, seed: int, row_group: int) -> Path:
    pq.write_table(pa.table(_frame(n, seed)), path, row_group_size=row_group)
    return path


def write_csv(path: Path, n: int, seed: int) -> Path:
    data = _frame(n, seed)
    lines = [",".join(["id", *FEATURES])]
    lines += [",".join([data["id"][i], *(repr(float(data[f][i])) for f in FEATURES)]) for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def read_parts(directory: Path | str, filesystem: object = None) -> dict[str, np.ndarray]:
    """All part files of an output directory as columns, in (source, row) order."""
    table = pq.read_table(str(directory), filesystem=filesystem)
    order = np.lexsort((table.column("row").to_numpy(), np.asarray(table.column("source").to_pylist())))
    return {name: np.asarray(table.column(name).to_pylist())[order] for name in table.column_names}


def local_scores(model: str, store: str, path: Path, out: Path) -> dict[str, np.ndarray]:
    LocalExecutor().score(ScoreJob(model=model, input=str(path), output=str(out), store=store))
    table = pq.read_table(out)
    return {name: np.asarray(table.column(name).to_pylist()) for name in table.column_names}


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.array_equal(a.view(np.int64), b.view(np.int64)))


@pytest.fixture
def executor(cluster: DaskCluster):
    opened = open_executor(cluster.executor + "?partition_rows=4000")
    try:
        yield opened
    finally:
        opened.close()


# ---------------------------------------------------------------------- registration
def test_listing_executors_imports_no_dask() -> None:
    code = (
        "import sys\n"
        "from adcore.plugins import get_host\n"
        "names = sorted(r.name for r in get_host().registry('executor').values())\n"
        "assert 'dask' in names, names\n"
        "heavy = [m for m in ('dask', 'distributed', 's3fs', 'adcore_dask.executor') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------- identical scores
def test_parquet_scores_equal_local_bit_for_bit(executor, store: str, tmp_path: Path) -> None:
    data = write_parquet(tmp_path / "in.parquet", 20_000, seed=1, row_group=2_000)  # 2 groups a partition
    adcore.fit(str(data), algo="core:hbos", name="pq", store=store, columns=FEATURES, seed=0)
    expected = local_scores("pq", store, data, tmp_path / "local.parquet")
    seen: list[str] = []
    progress = Progress(start=lambda total, unit: seen.append(f"{total} {unit}"), info=seen.append)
    summary = executor.score(
        ScoreJob(model="pq", input=str(data), output=str(tmp_path / "out"), store=store), progress
    )
    got = read_parts(tmp_path / "out")
    assert same_bits(got["score"], expected["score"])
    assert np.array_equal(got["label"], expected["label"])
    assert list(got["id"]) == list(expected["id"])
    assert list(got["row"]) == list(range(20_000))
    assert summary["partitions"] == 5 and summary["n_rows"] == 20_000 and summary["workers"] == 2
    assert summary["n_anomalies"] == int(expected["label"].sum())
    assert summary["score_max"] == float(expected["score"].max())
    assert 1 <= summary["model_loads"] <= 2  # once per worker, not once per task
    assert "5 partitions" in seen and any(line.startswith("dashboard: http://127.0.0.1:") for line in seen)
    top = summary["top_anomalies"][0]
    assert top["score"] == float(expected["score"].max()) and top["source"] == str(data)
    assert sorted(os.listdir(tmp_path / "out")) == ["_SUCCESS", *[f"part-0000{i}.parquet" for i in range(5)]]
    assert json.loads((tmp_path / "out" / "_SUCCESS").read_text())["n_rows"] == 20_000


def test_csv_scores_equal_local_bit_for_bit_pyod(executor, store: str, tmp_path: Path) -> None:
    pytest.importorskip("pyod")
    data = write_csv(tmp_path / "in.csv", 3_000, seed=2)
    adcore.fit(str(data), algo="pyod:iforest", name="csv", store=store, columns=FEATURES, seed=3)
    expected = local_scores("csv", store, data, tmp_path / "local.parquet")
    summary = executor.score(
        ScoreJob(model="csv", input=str(data), output=str(tmp_path / "out.csv"), store=store)
    )
    assert summary["format"] == "csv" and summary["partitions"] == 1
    import csv

    with open(tmp_path / "out.csv" / "part-00000.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == list(expected["id"])
    assert same_bits(np.array([float(r["score"]) for r in rows]), expected["score"])  # repr() round-trips
    assert [int(r["row"]) for r in rows] == list(range(3_000))


def test_directory_of_files_in_sorted_order(executor, store: str, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    write_parquet(folder / "b.parquet", 3_000, seed=4, row_group=1_000)
    write_csv(folder / "a.csv", 1_000, seed=5)
    write_parquet(folder / "sub" / "c.parquet", 500, seed=6, row_group=500)
    (folder / "_ignored.parquet").write_bytes(b"not data")
    (folder / "notes.txt").write_text("not data")
    adcore.fit(str(folder / "b.parquet"), algo="core:hbos", name="d", store=store, columns=FEATURES, seed=0)
    summary = executor.score(
        ScoreJob(model="d", input=str(folder), output=str(tmp_path / "out"), store=store)
    )
    assert summary["files"] == 3 and summary["n_rows"] == 4_500
    got = read_parts(tmp_path / "out")
    assert sorted(set(got["source"])) == [
        str(folder / "a.csv"),
        str(folder / "b.parquet"),
        str(folder / "sub/c.parquet"),
    ]
    glob = executor.score(ScoreJob(model="d", input=str(folder / "*.parquet"), output=None, store=store))
    assert glob["files"] == 1 and glob["n_rows"] == 3_000 and glob["output"] is None


def test_output_directory_with_a_job_is_refused(executor, store: str, tmp_path: Path) -> None:
    data = write_parquet(tmp_path / "in.parquet", 1_000, seed=7, row_group=1_000)
    adcore.fit(str(data), algo="core:hbos", name="o", store=store, columns=FEATURES, seed=0)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    executor.score(ScoreJob(model="o", input=str(data), output=str(out), store=store))
    with pytest.raises(DataError, match="already holds a job's output"):
        executor.score(ScoreJob(model="o", input=str(data), output=str(out), store=store))
    assert (out / "keep.txt").read_text() == "user data"


# --------------------------------------------------------------------------- fit
def test_fit_sample_same_rows_as_local_and_reproducible(executor, store: str, tmp_path: Path) -> None:
    data = write_parquet(tmp_path / "in.parquet", 20_000, seed=8, row_group=1_500)
    spec = detector_spec("core:hbos", {}, seed=11)
    cols = ["f0", "f1", "f2"]
    local = LocalExecutor().fit(
        FitJob(spec=spec, input=str(data), model="loc", store=store, sample=3_000, columns=cols)
    )
    remote = executor.fit(
        FitJob(spec=spec, input=str(data), model="dsk", store=store, sample=3_000, columns=cols)
    )
    executor.fit(  # the same again: a second version from the same rows
        FitJob(spec=spec, input=str(data), model="dsk", store=store, sample=3_000, columns=cols)
    )
    assert remote.summary["n_sampled"] == local.summary["n_sampled"] == 3_000
    assert remote.summary["partitions"] > 1 and remote.summary["n_rows"] == 20_000
    probe = np.random.default_rng(0).normal(size=(500, 3)) * 3
    scores = [load_model(ref, store).score(probe).scores for ref in ("loc@1", "dsk@1", "dsk@2")]
    assert same_bits(scores[0], scores[1]) and same_bits(scores[1], scores[2])
    assert remote.record.threshold == local.record.threshold


def test_fit_csv_counts_rows_on_workers(executor, store: str, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(3):
        write_csv(folder / f"p{k}.csv", 800, seed=20 + k)
    spec = detector_spec("core:hbos", {}, seed=1)
    out = executor.fit(
        FitJob(spec=spec, input=str(folder), model="c", store=store, sample=1_000, columns=FEATURES)
    )
    assert out.summary["n_rows"] == 2_400 and out.summary["n_sampled"] == 1_000
    whole = executor.fit(FitJob(spec=spec, input=str(folder), model="c", store=store, columns=FEATURES))
    assert whole.summary["n_sampled"] == 2_400 and whole.record.n_samples == 2_400


# -------------------------------------------------------------------------- faults
def test_sigkilled_worker_loses_and_duplicates_nothing(
    cluster: DaskCluster, store: str, tmp_path: Path
) -> None:
    """One worker process is SIGKILLed while it scores: its tasks rerun elsewhere (or on the process
    its nanny restarts), and each part is published whole under its own name exactly once."""
    import threading

    from distributed import Client

    pytest.importorskip("pyod")
    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(4):
        write_parquet(folder / f"p{k}.parquet", 40_000, seed=30 + k, row_group=5_000)
    # IsolationForest scores slowly enough (~10k rows/s a worker) that partitions are surely in flight.
    adcore.fit(
        str(folder / "p0.parquet"), algo="pyod:iforest", name="k", store=store, columns=FEATURES, seed=0
    )
    done: list[int] = []
    killed: list[int] = []
    stop = threading.Event()
    with Client(cluster.address, timeout=10) as spy:
        pids = spy.run(os.getpid)

        def kill_a_busy_worker() -> None:
            while not stop.is_set() and not killed:
                busy = [w for w, keys in spy.processing().items() if keys and w in pids]
                if done and busy:
                    killed.append(pids[busy[0]])
                    os.kill(pids[busy[0]], signal.SIGKILL)
                time.sleep(0.01)

        killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
        killer.start()
        try:
            with open_executor(cluster.executor + "?partition_rows=5000") as executor:
                summary = executor.score(
                    ScoreJob(model="k", input=str(folder), output=str(tmp_path / "out"), store=store),
                    Progress(advance=done.append),
                )
        finally:
            stop.set()
            killer.join()
        spy.wait_for_workers(2, timeout=60)  # the nanny restarts the killed process
    assert killed, "no worker was busy after the first partition finished"
    assert summary["partitions"] == 32 and summary["n_rows"] == 160_000 and len(done) == 32
    got = read_parts(tmp_path / "out")
    identity = list(zip(got["source"].tolist(), got["row"].tolist(), strict=True))
    expected = [(str(folder / f"p{k}.parquet"), r) for k in range(4) for r in range(40_000)]
    assert len(identity) == len(set(identity)) == 160_000
    assert identity == expected
    assert not [n for n in os.listdir(tmp_path / "out") if n.endswith(".tmp")]


def test_bad_file_fails_the_job_naming_it(executor, store: str, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(3):
        write_csv(folder / f"p{k}.csv", 500, seed=40 + k)
    bad = folder / "p1.csv"
    lines = bad.read_text().splitlines()
    lines[100] = lines[100].replace(lines[100].split(",")[2], "oops")
    bad.write_text("\n".join(lines) + "\n")
    adcore.fit(str(folder / "p0.csv"), algo="core:hbos", name="b", store=store, columns=FEATURES, seed=0)
    out = tmp_path / "out"
    with pytest.raises(DataError) as caught:
        executor.score(ScoreJob(model="b", input=str(folder), output=str(out), store=store))
    message = str(caught.value)
    assert str(bad) in message and "line 101" in message and "\n" not in message
    assert not [n for n in os.listdir(out) if n.startswith(("part-", "_SUCCESS"))]  # usable again

    summary = executor.score(
        ScoreJob(model="b", input=str(folder), output=str(out), store=store, on_bad_file="skip")
    )
    assert summary["skipped_files"] == [str(bad)]
    assert "line 101" in summary["skipped"][0]["reason"]
    assert summary["n_rows"] == 1_000 and summary["files"] == 2
    assert set(read_parts(out)["source"]) == {str(folder / "p0.csv"), str(folder / "p2.csv")}


def test_corrupt_parquet_is_named_or_skipped(executor, store: str, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    write_parquet(folder / "a.parquet", 1_000, seed=50, row_group=500)
    (folder / "b.parquet").write_bytes(b"PAR1 this is not parquet")
    spec = detector_spec("core:hbos", {}, seed=1)
    with pytest.raises(DataError, match=r"b\.parquet"):
        executor.fit(FitJob(spec=spec, input=str(folder), model="x", store=store, columns=FEATURES))
    fitted = executor.fit(
        FitJob(spec=spec, input=str(folder), model="x", store=store, columns=FEATURES, on_bad_file="skip")
    )
    assert fitted.summary["n_sampled"] == 1_000
    assert fitted.summary["skipped_files"] == [str(folder / "b.parquet")]


def test_unreachable_scheduler_fails_fast_naming_it(store: str, tmp_path: Path) -> None:
    data = write_parquet(tmp_path / "in.parquet", 100, seed=70, row_group=100)
    adcore.fit(str(data), algo="core:hbos", name="u", store=store, columns=FEATURES, seed=0)
    port = free_port()
    started = time.monotonic()
    executor = open_executor(f"dask://127.0.0.1:{port}?timeout=2")
    try:
        with pytest.raises(AdcoreError) as caught:
            executor.score(ScoreJob(model="u", input=str(data), output=None, store=store))
    finally:
        executor.close()
    message = str(caught.value)
    assert f"tcp://127.0.0.1:{port}" in message and "\n" not in message
    assert time.monotonic() - started < 15


# ---------------------------------------------------------------------------- S3
def test_s3_in_and_out(executor, s3: S3Server, store: str, tmp_path: Path) -> None:
    import s3fs

    bucket = s3.create_bucket()
    fs = s3fs.S3FileSystem(endpoint_url=s3.endpoint, key="testing", secret="testing")
    local = write_parquet(tmp_path / "a.parquet", 6_000, seed=60, row_group=2_000)
    fs.put_file(str(local), f"{bucket}/events/day=1/a.parquet")
    fs.put_file(str(write_csv(tmp_path / "b.csv", 700, seed=61)), f"{bucket}/events/day=2/b.csv")
    adcore.fit(str(local), algo="core:hbos", name="s", store=store, columns=FEATURES, seed=0)
    expected = local_scores("s", store, local, tmp_path / "local.parquet")

    summary = executor.score(
        ScoreJob(model="s", input=f"s3://{bucket}/events/", output=f"s3://{bucket}/scores/", store=store)
    )
    assert summary["n_rows"] == 6_700 and summary["files"] == 2
    assert fs.exists(f"{bucket}/scores/_SUCCESS")
    table = pq.read_table(f"{bucket}/scores/part-00000.parquet", filesystem=fs)
    assert table.column("source")[0].as_py() == f"s3://{bucket}/events/day=1/a.parquet"
    assert summary["partitions"] == 3  # a.parquet: 4,000 + 2,000 rows; b.csv: one
    parts = [pq.read_table(f"{bucket}/scores/part-0000{i}.parquet", filesystem=fs) for i in range(2)]
    scores = np.concatenate([p.column("score").to_numpy() for p in parts])
    assert same_bits(scores, expected["score"])
    assert pq.read_table(f"{bucket}/scores/part-00002.parquet", filesystem=fs).num_rows == 700

    spec = detector_spec("core:hbos", {}, seed=2)
    fitted = executor.fit(
        FitJob(
            spec=spec,
            input=f"s3://{bucket}/events/*/*.parquet",
            model="s3fit",
            store=store,
            sample=1_000,
            columns=FEATURES,
        )
    )
    assert fitted.summary["n_rows"] == 6_000 and fitted.summary["n_sampled"] == 1_000
