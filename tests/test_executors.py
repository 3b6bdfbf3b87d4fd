"""The executor port's core side: the local executor, the job options, the shared sample."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from adcore.errors import ParameterError
from adcore.services.executors import (
    LocalExecutor,
    ScoreJob,
    check_sample,
    executor_name,
    open_executor,
    sample_indices,
)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adcore.cli.main", *args], capture_output=True, text=True, env=env, timeout=120
    )


def _fit(train_csv, store: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """``adcore fit --algo core:hbos`` of the training file into ``store`` as model ``m``."""
    return _cli(
        "fit", "--algo", "core:hbos", "--input", str(train_csv), "--model", "m", "--store", store, *extra
    )


@pytest.fixture
def train_csv(tmp_path):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(400, 3))
    path = tmp_path / "train.csv"
    np.savetxt(path, X, delimiter=",", header="a,b,c", comments="", fmt="%.6f")
    return path


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("local", "local"),
        ("LOCAL", "local"),
        ("dask", "dask"),
        ("dask://10.0.0.1:8786", "dask"),
        (" x ", "x"),
    ],
)
def test_executor_name_is_the_name_or_the_scheme(text, name):
    assert executor_name(text) == name


def test_empty_executor_is_refused():
    with pytest.raises(ParameterError, match="--executor is empty"):
        executor_name("  ")


@pytest.mark.parametrize("cuts", [[1000], [1, 999], [250, 250, 250, 250], [0, 1000, 0], [7] * 142 + [6]])
def test_sample_is_the_same_rows_however_the_input_is_partitioned(cuts):
    whole = sample_indices([1000], 100, seed=11)[0]
    parts = sample_indices(cuts, 100, seed=11)
    offsets = np.concatenate([[0], np.cumsum(cuts)[:-1]])
    glued = np.concatenate([p + o for p, o in zip(parts, offsets, strict=True)])
    assert np.array_equal(glued, whole)
    assert len(np.unique(whole)) == 100 and all(np.all(np.diff(p) > 0) for p in parts if len(p) > 1)
    assert all(len(p) <= c for p, c in zip(parts, cuts, strict=True))


def test_sample_depends_on_the_seed_and_takes_everything_when_large():
    assert not np.array_equal(sample_indices([1000], 50, 1)[0], sample_indices([1000], 50, 2)[0])
    assert [p.tolist() for p in sample_indices([2, 3], 10, 1)] == [[0, 1], [0, 1, 2]]
    assert [p.tolist() for p in sample_indices([2, 3], None, 1)] == [[0, 1], [0, 1, 2]]


@pytest.mark.parametrize("bad", [0, 1, -5])
def test_sample_needs_two_rows(bad):
    with pytest.raises(ParameterError, match="--sample must be at least 2"):
        check_sample(bad)


def test_local_executor_takes_no_address():
    with pytest.raises(ParameterError, match="takes no address"):
        LocalExecutor("local://host:1")
    assert open_executor("local").name == "local"


@pytest.mark.parametrize("where", ["s3://bucket/in/", "data/*.csv", "{tmp}"])
def test_local_executor_reads_one_local_file_and_says_what_reads_the_rest(where, tmp_path):
    job = ScoreJob(model="m", input=where.format(tmp=tmp_path))
    with pytest.raises(ParameterError, match=r"one local file.*--executor dask"):
        LocalExecutor().score(job)


def test_unknown_executor_names_the_installed_ones(train_csv, tmp_path):
    proc = _fit(train_csv, str(tmp_path / "s"), "--executor", "locl")
    assert proc.returncode == 2, proc.stderr
    assert "no batch executor for 'locl'" in proc.stderr and "did you mean local" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--storage-option", "novalue"], "--storage-option expects KEY=VALUE, got 'novalue'"),
        (["--on-bad-file", "ignore"], "--on-bad-file must be one of error, skip"),
        (["--storage-option", "endpoint_url=http://x"], "--storage-option applies to remote inputs"),
    ],
)
def test_bad_executor_options_are_one_line_errors(train_csv, tmp_path, extra, message):
    store = str(tmp_path / "s")
    assert _fit(train_csv, store).returncode == 0
    proc = _cli("score", "--model", "m", "--store", store, "--input", str(train_csv), "--json", *extra)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_local_fit_on_a_sample_is_reproducible_and_reported(train_csv, tmp_path):
    store = str(tmp_path / "s")

    def fit(seed: str) -> dict:
        proc = _fit(train_csv, store, "--sample", "100", "--seed", seed, "--json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    first, again, other = fit("5"), fit("5"), fit("6")
    assert first["job"] == {**first["job"], "executor": "local", "n_rows": 400, "n_sampled": 100}
    assert first["n_samples"] == 100
    assert first["threshold"] == again["threshold"] and first["threshold"] != other["threshold"]
    text = _fit(train_csv, store, "--sample", "100")
    assert "fitted on a sample of 100 of 400 rows" in text.stderr


def test_local_fit_on_a_sample_takes_the_rows_sample_indices_draws(train_csv, tmp_path):
    import adcore
    from adcore.data import read_dataset
    from adcore.services.executors import FitJob, sample_dataset
    from adcore.services.spec import detector_spec

    spec = detector_spec("core:hbos", {}, seed=9)
    outcome = LocalExecutor().fit(
        FitJob(spec=spec, input=str(train_csv), model="m", store=str(tmp_path / "s"), sample=50)
    )
    rows = sample_indices([400], 50, 9)[0]
    X = read_dataset(str(train_csv)).X
    direct = adcore.fit(X[rows], "core:hbos", seed=9)
    stored = adcore.load_model("m", str(tmp_path / "s"))
    assert np.array_equal(stored.score(X).scores, direct.score(X).scores)
    assert sample_dataset(read_dataset(str(train_csv)), 50, 9).n_samples == 50
    assert outcome.summary["n_sampled"] == 50


def test_scoring_without_an_output_on_another_executor_needs_a_directory(train_csv, tmp_path):
    store = str(tmp_path / "s")
    assert _fit(train_csv, store).returncode == 0
    proc = _cli("score", "--model", "m", "--store", store, "--input", str(train_csv), "--executor", "inproc")
    assert proc.returncode == 2, proc.stderr
    assert "--executor inproc writes a directory of part files: give --output DIR" in proc.stderr
