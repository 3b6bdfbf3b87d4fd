"""Fixtures: MLflow's SQLite backend in a tmp dir, and real MLflow servers on loopback.

Servers (``mlflow server``, ``mlflow models serve``) take 5-10 s to start, so each is
started once per module and stopped by its process group in teardown. MLflow's telemetry
is switched off for every process the tests start.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mlflow")

from mlflow_servers import Server, start_mlflow_server, stop_server


@pytest.fixture(autouse=True)
def _quiet_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    for key in [k for k in os.environ if k.startswith("ADCORE_")]:
        monkeypatch.delenv(key)


@pytest.fixture
def tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """MLflow's SQLite backend with a local artifact root, as MLFLOW_TRACKING_URI and globally."""
    import mlflow

    root = tmp_path / "mlflow"
    root.mkdir()
    uri = f"sqlite:///{root}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root, ./mlruns, lands in tmp_path
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield uri
    finally:
        mlflow.set_tracking_uri(previous)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """An ``mlflow://`` store on its own SQLite file (no environment needed)."""
    root = tmp_path / "store"
    root.mkdir()
    return f"mlflow://{root}/mlflow.db?artifacts={root}/artifacts"


def write_csv(
    path: Path, n: int = 300, seed: int = 0, columns: tuple[str, ...] = ("a", "b", "c", "d")
) -> Path:
    """Values that are multiples of 1/1024: every parser (CSV, JSON, pandas) reads them exactly,
    so scores compared across processes differ only if the scoring does."""
    rng = np.random.default_rng(seed)
    X = np.round(rng.normal(size=(n, len(columns))) * 1024) / 1024
    X[:5] += 6.0
    lines = [",".join(columns)] + [",".join(repr(float(v)) for v in row) for row in X]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def train_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "train.csv")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``mlflow server`` on a free loopback port, SQLite backend, proxied artifacts; one per module."""
    server = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield server
    finally:
        stop_server(server)
