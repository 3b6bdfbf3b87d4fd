"""Non-finite scores (issue 15, C5): refused the same way on every path and in both stores.

A real plugin distribution provides two detectors that misbehave the way libraries do:
``nanny:always`` gives NaN training scores (PyOD's ABOD on two rows), ``nanny:late`` fits
fine but gives NaN to new rows whose first value exceeds 1e6. ``core:mahalanobis`` itself
must score data near the float64 limit (it overflowed to all-NaN before).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import PluginSite
from server_harness import running_server

import adcore
from adcore.errors import DataError
from adcore.services.registry import open_store

HUGE = np.random.default_rng(0).normal(size=(50, 2)) * 1e307  # its covariance overflowed
TRAIN = np.random.default_rng(1).normal(size=(60, 2))
NAN_ROW = [1e9, 0.0]  # nanny:late gives it NaN

NANNY = """
import numpy as np
import adcore

class Always:
    def fit(self, X, y=None):
        return self
    def decision_function(self, X):
        return np.full(len(X), np.nan)

class Late:
    def fit(self, X, y=None):
        return self
    def decision_function(self, X):
        X = np.asarray(X, dtype=float)
        return np.where(X[:, 0] > 1e6, np.nan, np.abs(X).sum(axis=1))

@adcore.hookimpl
def register_detectors(register):
    register("always", Always, summary="NaN training scores")
    register("late", Late, summary="NaN for rows beyond 1e6")
"""


@pytest.fixture
def site(plugin_site: PluginSite, tmp_path: Path) -> PluginSite:
    plugin_site.add("adcore-nanny", {"nanny": "nanny_plugin"}, {"nanny_plugin": NANNY})
    plugin_site.env.update(ADCORE_STORE=str(tmp_path / "store"), ADCORE_HOME=str(tmp_path / "home"))
    return plugin_site


def write_csv(path: Path, rows: np.ndarray | list[list[float]]) -> Path:
    path.write_text("a,b\n" + "\n".join(f"{r[0]!r},{r[1]!r}" for r in np.asarray(rows).tolist()) + "\n")
    return path


def test_mahalanobis_scores_data_near_the_float64_limit(site: PluginSite, tmp_path: Path) -> None:
    huge = write_csv(tmp_path / "huge.csv", HUGE)
    proc = site.run("run", "--algo", "core:mahalanobis", "--input", str(huge), "--json", "--seed", "0")
    assert proc.returncode == 0, proc.stderr
    assert "NaN" not in proc.stdout and json.loads(proc.stdout)["n_anomalies"] > 0
    ordinary = adcore.detect(HUGE / 1e307, algo="core:mahalanobis", seed=0).scores
    assert np.allclose(adcore.detect(HUGE, algo="core:mahalanobis", seed=0).scores, ordinary)


def test_cli_refuses_nan_training_scores_and_prints_no_nan(site: PluginSite, tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", TRAIN)
    for args in (("run",), ("fit", "--model", "h")):
        proc = site.run(*args, "--algo", "nanny:always", "--input", str(train), "--json")
        assert proc.returncode == 2, proc.stderr
        assert "no finite score" in proc.stderr and "NaN" not in proc.stdout
    assert not (tmp_path / "store" / "artifacts" / "h").exists()


def test_cli_refuses_nan_scores_of_new_data(site: PluginSite, tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", TRAIN)
    new = write_csv(tmp_path / "new.csv", [NAN_ROW, [1.0, 1.0]])
    assert site.run("fit", "--algo", "nanny:late", "--input", str(train), "--model", "m").returncode == 0
    for args in (
        ("score", "--model", "m", "--input", str(new), "--json"),
        ("explain", "--model", "m", "--input", str(new)),
    ):
        proc = site.run(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "NaN" in proc.stderr and "NaN" not in proc.stdout


@pytest.mark.service  # a real adcore serve: needs the server extra
def test_server_answers_400_never_500(site: PluginSite, tmp_path: Path) -> None:
    env = {"PYTHONPATH": os.pathsep.join([str(site.root), os.environ.get("PYTHONPATH", "")])}
    env["ADCORE_DISABLE_PLUGIN_AUTOLOAD"] = ""
    with running_server(tmp_path / "srv", env=env) as server, server.client() as http:
        for route, extra in (("/v1/detect", {}), ("/v1/models", {"name": "h"})):
            body = {"algorithm": "nanny:always", "data": TRAIN.tolist(), "seed": 0, **extra}
            answer = http.post(route, json=body)
            assert answer.status_code == 400, answer.text
        body = {"name": "m", "algorithm": "nanny:late", "data": TRAIN.tolist(), "seed": 0}
        created = http.post("/v1/models", json=body)
        assert created.status_code == 201, created.text
        answer = http.post("/v1/models/m/score", json={"data": [NAN_ROW]})
        assert answer.status_code == 400, answer.text
        assert [m["ref"] for m in http.get("/v1/models").json()["models"]] == ["m@1"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.service)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "store")
    return str(request.getfixturevalue("postgres_store_url"))


def test_no_store_keeps_a_nan_threshold_and_both_refuse_nan_scores(
    site: PluginSite, any_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    from adcore.plugins import PluginHost, set_host

    monkeypatch.syspath_prepend(str(site.root))
    host = PluginHost(autoload=False)
    host.add_plugin(importlib.import_module("nanny_plugin"), "nanny")
    set_host(host.load())
    try:
        with pytest.raises(DataError, match="no finite score"):
            adcore.fit(TRAIN, algo="nanny:always", name="h", store=any_store, seed=0)
        adcore.fit(TRAIN, algo="nanny:late", name="m", store=any_store, seed=0)
        with contextlib.closing(open_store(any_store)) as opened:
            records = opened.list()
        assert [r.ref for r in records] == ["m@1"] and all(np.isfinite(r.threshold) for r in records)
        loaded = adcore.load_model("m", store=any_store)
        with pytest.raises(DataError, match="NaN"):
            loaded.score(np.array([NAN_ROW]))
        assert np.isfinite(loaded.score(np.array([[1.0, 1.0]])).scores).all()
    finally:
        set_host(None)


def test_a_stream_dead_letters_records_scored_nan(site: PluginSite, tmp_path: Path) -> None:
    """A stream treats a NaN score as the other paths do: the record is refused (dead-lettered
    with the reason), the records around it are scored, and the output stays in order."""
    import json

    rows = [*TRAIN.tolist(), [0.5, 0.5], NAN_ROW, [0.1, -0.2]]
    stdin = "".join(json.dumps({"a": a, "b": b}) + "\n" for a, b in rows)
    dead = tmp_path / "dead.jsonl"
    proc = site.run(
        "stream", "--algo", "nanny:late", "--window", str(len(TRAIN)), "--retrain", "never",
        "--dead-letter", f"file://{dead}", "-q", stdin=stdin,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) == len(rows) - 1 and all(line["score"] is not None for line in out[len(TRAIN) :])
    (letter,) = [json.loads(line) for line in dead.read_text().splitlines()]
    assert "no score (NaN)" in letter["error"]
