"""Real MLflow servers on loopback: fit/score through ``mlflow server``, and ``mlflow models serve``
answering with exactly the scores of ``adcore score``.

One tracking server for the module (``mlflow_server`` in conftest.py, 5-10 s to start); the
model server is started once too. Both are stopped by process group in teardown.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow_servers import Server, start_model_server, stop_server

pytestmark = pytest.mark.service


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADCORE_", "MLFLOW_"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "adcore.cli.main", *args], capture_output=True, text=True, env=env, timeout=180
    )


def read_scores(path: Path) -> list[tuple[float, int]]:
    with open(path, newline="") as f:
        return [(float(row["score"]), int(row["label"])) for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def fitted(mlflow_server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """``adcore fit`` through the tracking server, then ``adcore score`` through it."""
    from conftest import write_csv

    root = tmp_path_factory.mktemp("served")
    train, today = write_csv(root / "train.csv"), write_csv(root / "today.csv", n=120, seed=7)
    store = f"mlflow://127.0.0.1:{mlflow_server.port}"
    done = cli(
        "fit",
        "--algo",
        "core:hbos",
        "--input",
        str(train),
        "--model",
        "payments",
        "--seed",
        "0",
        "--store",
        store,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "payments@1"
    scored = cli(
        "score",
        "--model",
        "payments@1",
        "--input",
        str(today),
        "--output",
        str(root / "scores.csv"),
        "--store",
        store,
    )
    assert scored.returncode == 0, scored.stderr
    return {"root": root, "today": today, "scores": root / "scores.csv", "store": store}


def test_fit_and_score_through_a_tracking_server(fitted, mlflow_server):
    rows = read_scores(Path(fitted["scores"]))
    assert len(rows) == 120
    # scoring the training file through the server gives exactly 'run''s bytes (same data, seed)
    root, store = Path(fitted["root"]), str(fitted["store"])
    scored = cli(
        "score",
        "--model",
        "payments",
        "--input",
        str(root / "train.csv"),
        "--output",
        str(root / "train-scores.csv"),
        "--store",
        store,
    )
    assert scored.returncode == 0, scored.stderr
    ran = cli(
        "run",
        "--algo",
        "core:hbos",
        "--seed",
        "0",
        "--input",
        str(root / "train.csv"),
        "--output",
        str(root / "run.csv"),
    )
    assert ran.returncode == 0, ran.stderr
    assert (root / "train-scores.csv").read_bytes() == (root / "run.csv").read_bytes()
    listed = cli("models", "--json", "--store", str(fitted["store"]))
    assert listed.returncode == 0, listed.stderr
    assert [r["ref"] for r in json.loads(listed.stdout)] == ["payments@1"]
    # the artifact went through the server's proxy into --artifacts-destination
    assert list((mlflow_server.log.parent / "artifacts").rglob("model.adcore"))


@pytest.fixture(scope="module")
def model_server(fitted, mlflow_server: Server) -> Iterator[Server]:
    server = start_model_server("models:/payments/1", mlflow_server.url, Path(fitted["root"]))
    try:
        yield server
    finally:
        stop_server(server)


def test_models_serve_answers_with_adcore_scores_bit_for_bit(fitted, model_server):
    with open(fitted["today"], newline="") as f:
        reader = csv.reader(f)
        columns = next(reader)
        data = [[float(v) for v in row] for row in reader]
    body = json.dumps({"dataframe_split": {"columns": columns, "data": data}}).encode()
    request = urllib.request.Request(
        f"{model_server.url}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        predictions = json.loads(response.read())["predictions"]
    served = [(float(p["score"]), int(p["label"])) for p in predictions]
    expected = read_scores(Path(fitted["scores"]))
    assert served == expected  # float equality: the same doubles, not merely close ones
