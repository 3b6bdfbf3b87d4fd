"""One detector, one result: every entry point builds detectors through the same spec.

For every detector registered by the installed plugins (all of this repository's in CI),
and for ensembles, the same data, parameters and seed must give the same scores and
labels through the Python API (``adcore.detect``, ``adcore.fit(...).score``), the CLI
(``adcore run``; ``adcore fit`` + ``adcore score``), the REST API (a real ``adcore serve``
on loopback) and a stream (``adcore stream`` fits on its warm-up window and scores the
same rows again, as a stored model does).

Detectors whose registration declares that a seed does not make them reproducible
(``xfail_checks`` naming ``check_seed_determinism``) cannot be compared score by score and
are listed as skipped with that reason.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from server_harness import running_server

import adcore
from adcore.cli.main import run_cli
from adcore.plugins import get_host

SEED = 7
N_ROWS = 160
ENSEMBLES: dict[str, dict[str, Any]] = {
    "core:hbos,core:mad|vote": {"algo": "core:hbos,core:mad", "params": {"combine": "vote"}},
    "core:hbos,core:mahalanobis,core:mad|consensus": {
        "algo": "core:hbos,core:mahalanobis,core:mad",
        "params": {},
    },
    "core:hbos,core:mad|member-param": {
        "algo": "core:hbos,core:mad",
        "params": {"combine": "average", "core:hbos.n_bins": 7},
    },
}


def _subjects(*, stored: bool = False) -> list[Any]:
    """Every registered detector, and the ensembles; ``stored``: the cases that save a model."""
    cases = []
    for name, reg in sorted(get_host().registry("detector").items()):
        if name == "core:ensemble":
            continue  # covered by ENSEMBLES, which name their members
        params = dict(reg.metadata.get("test_params") or {})
        declared = reg.metadata.get("xfail_checks") or {}
        why = declared.get("check_seed_determinism")
        marks = [pytest.mark.skip(reason=f"not reproducible with a seed: {why}")] if why else []
        if stored and declared.get("check_pickle_round_trip"):
            reason = declared["check_pickle_round_trip"]
            marks.append(pytest.mark.skip(reason=f"cannot be stored and reloaded: {reason}"))
        if reg.missing_needs():
            marks.append(pytest.mark.skip(reason=f"needs {', '.join(reg.missing_needs())}"))
        if reg.metadata.get("slow"):
            marks.append(pytest.mark.slow)
        cases.append(pytest.param(name, params, id=name, marks=marks))
    for label, case in ENSEMBLES.items():
        cases.append(pytest.param(case["algo"], case["params"], id=label))
    return cases


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Gaussian rows with planted outliers, written once as CSV and as JSON lines (twice over)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(N_ROWS, 4))
    X[:6] += 5.0
    X = np.round(X, 6)  # the same doubles after a text round trip
    root = tmp_path_factory.mktemp("parity")
    names = [f"f{j}" for j in range(X.shape[1])]
    with open(root / "train.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        writer.writerows(X.tolist())
    with open(root / "stream.jsonl", "w") as handle:
        for row in np.vstack([X, X]):
            handle.write(json.dumps(dict(zip(names, row.tolist(), strict=True))) + "\n")
    return {"X": X, "names": names, "root": root}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real ``adcore serve`` that loads every installed plugin, as users run it."""
    root = tmp_path_factory.mktemp("parity-server")
    env = {"ADCORE_DISABLE_PLUGIN_AUTOLOAD": "0"}
    with running_server(root, env=env) as running, running.client() as client:
        yield client


def _param_args(params: dict[str, Any]) -> list[str]:
    args: list[str] = []
    for key, value in params.items():
        args += ["--param", f"{key}={json.dumps(value)}"]
    return args


def _read_scores(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return np.array([float(r["score"]) for r in rows]), np.array([int(r["label"]) for r in rows])


def _cli(*args: str) -> None:
    code = run_cli(list(args))
    assert code == 0, f"adcore {' '.join(args)} exited {code}"


def _same(where: str, scores: np.ndarray, labels: np.ndarray, ref: tuple[np.ndarray, np.ndarray]) -> None:
    """Equal labels, and scores equal to float32 precision (torch models score in float32, and
    a different batch split changes the last bits)."""
    np.testing.assert_allclose(scores, ref[0], rtol=1e-6, atol=1e-9, err_msg=f"{where}: scores differ")
    np.testing.assert_array_equal(labels, ref[1], err_msg=f"{where}: labels differ")


@pytest.mark.service
@pytest.mark.parametrize(("algo", "params"), _subjects())
def test_every_entry_point_gives_the_same_result(algo, params, data, server, tmp_path):
    X, root = data["X"], data["root"]
    frame_free = X  # the Python API takes the array; names come from the CSV elsewhere
    python = adcore.detect(frame_free, algo, seed=SEED, feature_names=data["names"], **params)
    reference = (python.scores, python.labels)
    assert python.metadata["seed"] == SEED

    out = tmp_path / "run.csv"
    _cli("run", "--algo", algo, "--input", str(root / "train.csv"), "--output", str(out),
         "--seed", str(SEED), *_param_args(params))  # fmt: skip
    _same("adcore run", *_read_scores(out), reference)

    response = server.post(
        "/v1/detect",
        json={"algorithm": algo, "params": params, "seed": SEED, "data": X.tolist(),
              "feature_names": data["names"]},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    _same("POST /v1/detect", np.array(body["scores"], dtype=float), np.array(body["labels"]), reference)


@pytest.mark.service
@pytest.mark.parametrize(("algo", "params"), _subjects(stored=True))
def test_stored_models_and_streams_score_alike(algo, params, data, tmp_path, monkeypatch):
    X, root = data["X"], data["root"]
    monkeypatch.setenv("ADCORE_HOME", str(tmp_path / "home"))
    model = adcore.fit(X, algo, seed=SEED, columns=data["names"], **params)
    scored = model.score(X)
    reference = (scored.scores, scored.labels)

    _cli("fit", "--algo", algo, "--input", str(root / "train.csv"), "--model", "parity",
         "--seed", str(SEED), *_param_args(params))  # fmt: skip
    out = tmp_path / "score.csv"
    _cli("score", "--model", "parity", "--input", str(root / "train.csv"), "--output", str(out))
    _same("adcore fit + adcore score", *_read_scores(out), reference)

    sink = tmp_path / "stream.jsonl"
    _cli("stream", "--algo", algo, "--source", f"file://{root / 'stream.jsonl'}", "--sink", f"file://{sink}",
         "--window", str(N_ROWS), "--warmup", str(N_ROWS), "--retrain", "never", "--batch-size", "100000",
         "--seed", str(SEED), "--quiet", *_param_args(params))  # fmt: skip
    lines = [json.loads(line) for line in sink.read_text().splitlines()]
    assert [line.get("warmup", False) for line in lines] == [True] * N_ROWS + [False] * N_ROWS
    scored_lines = lines[N_ROWS:]
    _same(
        "adcore stream",
        np.array([line["score"] for line in scored_lines], dtype=float),
        np.array([line["label"] for line in scored_lines]),
        reference,
    )
