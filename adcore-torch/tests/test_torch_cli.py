"""The commands from the issue, end to end in a subprocess: run, fit --model, score."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch_support  # noqa: F401 - one CPU thread for the fits (and the CLI's subprocesses)


def adcore(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    env["ADCORE_HOME"] = str(cwd / "home")
    return subprocess.run(
        [sys.executable, "-m", "adcore.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def write_csv(path: Path, X: np.ndarray) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f"x{i}" for i in range(X.shape[1])])
        writer.writerows(X.round(6).tolist())


def test_run_writes_one_score_per_row_and_no_progress_when_piped(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    X[:5] += 8
    write_csv(tmp_path / "data.csv", X)
    proc = adcore(
        "run",
        "--algo",
        "torch:autoencoder",
        "--input",
        "data.csv",
        "--output",
        "scores.csv",
        "--param",
        "epochs=3",
        "--seed",
        "0",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "epochs" not in proc.stderr  # stderr is a pipe here: no bar
    rows = list(csv.DictReader((tmp_path / "scores.csv").open()))
    assert len(rows) == 200
    scores = np.array([float(r["score"]) for r in rows])
    assert set(np.argsort(scores)[-5:]) == set(range(5))


def test_fit_with_a_model_name_then_score_from_the_store(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    write_csv(tmp_path / "train.csv", rng.normal(size=(150, 4)))
    write_csv(tmp_path / "new.csv", rng.normal(size=(20, 4)))
    fit = adcore(
        "fit",
        "--algo",
        "torch:deepsvdd",
        "--param",
        "epochs=3",
        "--param",
        "device=cpu",
        "--input",
        "train.csv",
        "--model",
        "sensors",
        cwd=tmp_path,
    )
    assert fit.returncode == 0, fit.stderr
    score = adcore("score", "--model", "sensors", "--input", "new.csv", "--output", "s.csv", cwd=tmp_path)
    assert score.returncode == 0, score.stderr
    assert len(list(csv.DictReader((tmp_path / "s.csv").open()))) == 20
