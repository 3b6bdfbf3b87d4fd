"""adcore-pyod's scores are PyOD's own, to floating-point precision, through the API and the CLI.

Same data, same seed: ``adcore.detect(X, algo="pyod:NAME", seed=S)`` and ``adcore run
--algo pyod:NAME --seed S`` on a CSV of X give PyOD's ``decision_scores_`` on ADBench data.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import os
import subprocess
import sys
from pathlib import Path

import adcore
import numpy as np
import pytest
from adcore.cli.main import run_cli

ADBENCH = Path(os.environ.get("ADCORE_ADBENCH", "/work/shared/datasets/adbench"))
DATASETS = ["42_WBC", "29_Pima", "18_Ionosphere", "6_cardio"]  # 223 to 1831 rows, 8 to 32 features
ALGOS = {
    "iforest": "pyod.models.iforest:IForest",
    "ecod": "pyod.models.ecod:ECOD",
    "copod": "pyod.models.copod:COPOD",
    "hbos": "pyod.models.hbos:HBOS",
    "knn": "pyod.models.knn:KNN",
    "lof": "pyod.models.lof:LOF",
    "pca": "pyod.models.pca:PCA",
}
SEED = 7
RTOL = 1e-12

pytestmark = pytest.mark.skipif(not ADBENCH.is_dir(), reason=f"ADBench datasets not found in {ADBENCH}")


def load(name: str) -> np.ndarray:
    with np.load(ADBENCH / f"{name}.npz") as data:
        return np.ascontiguousarray(data["X"], dtype=np.float64)


def pyod_scores(algo: str, X: np.ndarray, **params: object) -> np.ndarray:
    """What a PyOD user gets: the class itself, seeded where it takes a seed."""
    module, _, name = ALGOS[algo].partition(":")
    cls = getattr(importlib.import_module(module), name)
    if "random_state" in inspect.signature(cls).parameters:
        params.setdefault("random_state", SEED)
    return cls(contamination=0.1, **params).fit(X).decision_scores_


def write_csv(path: Path, X: np.ndarray) -> None:
    """Floats written with repr(): the CSV parses back to exactly X."""
    header = ",".join(f"f{j}" for j in range(X.shape[1]))
    path.write_text(header + "\n" + "\n".join(",".join(repr(float(v)) for v in row) for row in X) + "\n")


def read_scores(path: Path) -> np.ndarray:
    lines = path.read_text().splitlines()
    column = lines[0].split(",").index("score")
    return np.array([float(line.split(",")[column]) for line in lines[1:]])


@pytest.fixture(scope="module", params=DATASETS)
def dataset(request, tmp_path_factory):
    X = load(request.param)
    csv = tmp_path_factory.mktemp(request.param) / "data.csv"
    write_csv(csv, X)
    return request.param, X, csv


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_api_scores_equal_pyod(dataset, algo):
    _, X, _ = dataset
    result = adcore.detect(X, algo=f"pyod:{algo}", seed=SEED)
    np.testing.assert_allclose(result.scores, pyod_scores(algo, X), rtol=RTOL, atol=0)


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_cli_scores_equal_pyod(dataset, algo, tmp_path):
    _, X, csv = dataset
    out = tmp_path / "scores.csv"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = run_cli(
            ["run", "--algo", f"pyod:{algo}", "--seed", str(SEED), "--input", str(csv), "--output", str(out)]
        )
    assert code == 0, err.getvalue()
    np.testing.assert_allclose(read_scores(out), pyod_scores(algo, X), rtol=RTOL, atol=0)


def test_cli_param_reaches_pyod(tmp_path):
    X = load("42_WBC")
    csv, out = tmp_path / "data.csv", tmp_path / "scores.csv"
    write_csv(csv, X)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = run_cli(
            [
                "run",
                "--algo",
                "pyod:knn",
                "--param",
                "n_neighbors=10",
                "--input",
                str(csv),
                "--output",
                str(out),
            ]
        )
    assert code == 0, err.getvalue()
    np.testing.assert_allclose(read_scores(out), pyod_scores("knn", X, n_neighbors=10), rtol=RTOL, atol=0)
    assert not np.allclose(read_scores(out), pyod_scores("knn", X))  # the parameter made a difference


def test_installed_console_script_gives_pyod_scores(tmp_path):
    """The real ``adcore`` command, in a fresh process, on the smallest dataset."""
    X = load("42_WBC")
    csv, out = tmp_path / "data.csv", tmp_path / "scores.csv"
    write_csv(csv, X)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "adcore.cli.main",
            "run",
            "--algo",
            "iforest",
            "--seed",
            str(SEED),
            "--input",
            str(csv),
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_allclose(read_scores(out), pyod_scores("iforest", X), rtol=RTOL, atol=0)


def test_deep_svdd_adapter_gives_pyods_scores():
    """pyod:deep-svdd goes through adcore_pyod.adapters (n_features at fit): still PyOD's scores."""
    pytest.importorskip("torch")
    from pyod.models.deep_svdd import DeepSVDD

    X = load("42_WBC")
    params = {"epochs": 3, "verbose": 0}
    ours = adcore.detect(X, algo="pyod:deep-svdd", seed=SEED, **params).scores
    theirs = DeepSVDD(n_features=X.shape[1], contamination=0.1, random_state=SEED, **params).fit(X)
    np.testing.assert_allclose(ours, theirs.decision_scores_, rtol=1e-6)  # float32 network
