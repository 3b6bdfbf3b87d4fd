"""``adcore fit/score --executor dask...`` as a user types them, against the fixture cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers import DaskCluster, S3Server, free_port
from test_dask_executor import FEATURES, write_csv, write_parquet

pytestmark = pytest.mark.service

ADCORE = str(Path(sys.executable).with_name("adcore"))


def adcore(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([ADCORE, *args], capture_output=True, text=True, env=env, timeout=180)


@pytest.fixture
def env(tmp_path: Path, s3: S3Server) -> dict[str, str]:
    out = {**os.environ, **s3.env(), "ADCORE_HOME": str(tmp_path / "home"), "NO_COLOR": "1"}
    out.pop("ADCORE_STORE", None)
    out.pop("ADCORE_EXECUTOR", None)
    return out


def test_fit_sample_then_score_a_directory(cluster: DaskCluster, env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    write_parquet(folder / "a.parquet", 3_000, seed=1, row_group=1_000)
    write_csv(folder / "b.csv", 1_000, seed=2)
    cols = ",".join(FEATURES)
    fit = adcore(
        "fit", "--algo", "core:hbos", "--input", str(folder), "--sample", "1500", "--model", "events",
        "--columns", cols, "--seed", "3", "--executor", cluster.executor, "--json", env=env,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr
    fitted = json.loads(fit.stdout)
    assert fitted["n_samples"] == 1500 and fitted["job"]["n_rows"] == 4_000

    out = tmp_path / "scores"
    score = adcore(
        "score", "--model", "events", "--input", str(folder), "--output", str(out),
        "--executor", cluster.executor, "--json", env=env,
    )  # fmt: skip
    assert score.returncode == 0, score.stderr
    summary = json.loads(score.stdout)
    assert summary["n_rows"] == 4_000 and summary["workers"] == 2 and summary["partitions"] == 2
    assert summary["executor"] == "dask" and summary["skipped_files"] == []
    assert (out / "_SUCCESS").exists() and (out / "part-00000.parquet").exists()

    again = adcore(
        "score", "--model", "events", "--input", str(folder), "--output", str(out),
        "--executor", cluster.executor, env=env,
    )  # fmt: skip
    assert again.returncode == 2 and "already holds a job's output" in again.stderr


def test_bad_file_skip_is_listed(cluster: DaskCluster, env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    write_csv(folder / "a.csv", 400, seed=4)
    (folder / "b.csv").write_text("id,f0,f1,f2,f3,f4\nx,1,2,3,4\n")  # a short row
    fit = adcore(
        "fit", "--algo", "core:hbos", "--input", str(folder / "a.csv"), "--model", "m", "--columns",
        ",".join(FEATURES), "--seed", "1", env=env,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr
    failed = adcore(
        "score", "--model", "m", "--input", str(folder), "--output", str(tmp_path / "o1"),
        "--executor", cluster.executor, env=env,
    )  # fmt: skip
    assert failed.returncode == 2 and str(folder / "b.csv") in failed.stderr
    skipped = adcore(
        "score", "--model", "m", "--input", str(folder), "--output", str(tmp_path / "o2"),
        "--executor", cluster.executor, "--on-bad-file", "skip", "--json", env=env,
    )  # fmt: skip
    assert skipped.returncode == 0, skipped.stderr
    assert json.loads(skipped.stdout)["skipped_files"] == [str(folder / "b.csv")]


def test_unreachable_scheduler_exits_2_naming_it(env: dict[str, str], tmp_path: Path) -> None:
    data = write_parquet(tmp_path / "in.parquet", 200, seed=5, row_group=200)
    assert adcore("fit", "--algo", "core:hbos", "--input", str(data), "--model", "u", "--columns",
                  ",".join(FEATURES), env=env).returncode == 0  # fmt: skip
    port = free_port()
    started = time.monotonic()
    done = adcore(
        "score", "--model", "u", "--input", str(data), "--output", str(tmp_path / "o"),
        "--executor", f"dask://127.0.0.1:{port}", env=env,
    )  # fmt: skip
    assert time.monotonic() - started < 20  # the default connect timeout is 5 s
    assert done.returncode == 2
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0], done.stderr


def test_local_cluster_started_and_stopped(env: dict[str, str], tmp_path: Path) -> None:
    data = write_parquet(tmp_path / "in.parquet", 2_000, seed=6, row_group=1_000)
    assert adcore("fit", "--algo", "core:hbos", "--input", str(data), "--model", "l", "--columns",
                  ",".join(FEATURES), env=env).returncode == 0  # fmt: skip
    done = adcore(
        "score", "--model", "l", "--input", str(data), "--output", str(tmp_path / "o.csv"),
        "--executor", "dask://?n_workers=1", "--json", env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["workers"] == 1 and summary["format"] == "csv" and summary["n_rows"] == 2_000
    assert (tmp_path / "o.csv" / "part-00000.csv").exists()
