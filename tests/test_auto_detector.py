"""``core:auto``: fits, scores, records why, repeats with a seed, and beats trivial baselines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adcore.builtin.auto_synth import ANOMALY_TYPES, make_anomalies
from adcore.errors import ParameterError
from adcore.services.spec import build_detector
from adcore.testing import roc_auc


def _fit(X: np.ndarray, **params):
    return build_detector("core:auto", {"random_state": 0, "jobs": 1, **params}).fit(X)


@pytest.fixture(scope="module")
def pyod_pool():
    pytest.importorskip("pyod")
    pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def local_set():
    return make_anomalies("local", n_samples=600, n_features=6, seed=11)


@pytest.mark.parametrize("kind", ANOMALY_TYPES)
def test_synthetic_sets_have_the_requested_anomalies(kind):
    X, y = make_anomalies(kind, n_samples=400, n_features=5, contamination=0.05, seed=3)
    assert X.shape == (400, 5) and np.isfinite(X).all()
    assert y.sum() == 20 and set(np.unique(y)) == {0, 1}
    X2, y2 = make_anomalies(kind, n_samples=400, n_features=5, contamination=0.05, seed=3)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)


def test_synthetic_sets_refuse_unknown_kinds():
    with pytest.raises(ParameterError, match="unknown anomaly kind 'weird'"):
        make_anomalies("weird")


def test_auto_fits_scores_and_ranks_anomalies_first(pyod_pool, local_set):
    X, y = local_set
    detector = _fit(X)
    assert detector.decision_scores_.shape == (len(X),)
    assert np.isfinite(detector.decision_function(X[:7])).all()
    assert set(np.unique(detector.labels_)) <= {0, 1}
    # local anomalies overlap the normal data (ADBench's hardest kind): well above chance
    assert roc_auc(y, detector.decision_scores_) > 0.8


def test_auto_records_its_reasoning(pyod_pool, local_set):
    X, _ = local_set
    estimator = _fit(X).estimator_
    choice = estimator.report()["choice"]
    json.dumps(choice)  # JSON-ready, as --json prints it
    assert choice["pool"] == "pyod"
    assert choice["members"] == ["pyod:iforest", "pyod:cblof", "pyod:mcd", "pyod:knn"]
    assert choice["n_samples"] == len(X) and choice["n_features"] == X.shape[1]
    weights = np.array(choice["weights"])
    assert weights.shape == (4,) and np.isclose(weights.sum(), 1.0) and (weights > 0).all()
    assert choice["anchor"] == "pyod:iforest"
    assert any("mean of 3 seeds" in r for r in choice["reasons"])
    assert any("x1.5 for pyod:iforest" in r for r in choice["reasons"])


def test_anchor_weight_moves_weight_to_the_first_member(pyod_pool, local_set):
    X, _ = local_set
    plain = _fit(X, anchor_weight=1.0).estimator_.choice_["weights"][0]
    anchored = _fit(X, anchor_weight=3.0).estimator_.choice_["weights"][0]
    assert anchored > plain


def test_auto_swaps_the_robust_covariance_in_high_dimension(pyod_pool):
    X, _ = make_anomalies("global", n_samples=300, n_features=60, seed=5)
    choice = _fit(X).estimator_.choice_
    assert "pyod:pca" in choice["members"] and "pyod:mcd" not in choice["members"]
    assert any("60 features > 50" in r for r in choice["reasons"])


def test_auto_drops_a_member_that_cannot_fit(pyod_pool):
    # Eight equal, tight, far-apart clusters: CBLOF finds no large/small cluster split.
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 50, size=(8, 3))
    X = np.vstack([c + rng.normal(0, 0.01, size=(40, 3)) for c in centres])
    choice = _fit(X).estimator_.choice_
    assert "pyod:cblof" in choice["dropped"]
    assert choice["members"] == ["pyod:iforest", "pyod:mcd", "pyod:knn"]
    assert any("pyod:cblof dropped" in r for r in choice["reasons"])


def test_auto_is_deterministic_with_a_seed(pyod_pool, local_set):
    X, _ = local_set
    first, second = _fit(X), _fit(X)
    assert np.array_equal(first.decision_scores_, second.decision_scores_)
    assert np.array_equal(first.decision_function(X[:20]), second.decision_function(X[:20]))


@pytest.mark.parametrize("kind", ["dependency", "local"])
def test_auto_beats_trivial_baselines_on_generated_data(pyod_pool, kind):
    X, y = make_anomalies(kind, n_samples=800, n_features=8, seed=21)
    auto = roc_auc(y, _fit(X).decision_scores_)
    for baseline in ("core:mad", "core:hbos"):
        other = roc_auc(y, build_detector(baseline).fit(X).decision_scores_)
        assert auto > other + 0.05, (kind, baseline, auto, other)


def test_core_pool_needs_numpy_only():
    X, y = make_anomalies("global", n_samples=400, n_features=4, seed=2)
    detector = build_detector("core:auto", {"pool": "core", "random_state": 0}).fit(X)
    assert detector.estimator_.choice_["members"] == ["core:hbos", "core:mahalanobis", "core:mad"]
    assert roc_auc(y, detector.decision_scores_) > 0.8


def test_bad_anchor_weight_is_refused():
    with pytest.raises(ParameterError, match="anchor_weight"):
        build_detector("core:auto", {"anchor_weight": 0})


def test_cli_explains_the_choice(pyod_pool, tmp_path, capfd):
    from adcore.cli.main import run_cli

    X, _ = make_anomalies("global", n_samples=200, n_features=3, seed=4)
    path = tmp_path / "x.csv"
    np.savetxt(path, X, delimiter=",", header="a,b,c", comments="")
    out = str(tmp_path / "o.csv")
    assert (
        run_cli(["run", "--algo", "auto", "-i", str(path), "-o", out, "--seed", "1", "--explain-choice"]) == 0
    )
    assert "why: 200 rows x 3 features; pool pyod" in capfd.readouterr().err
    assert run_cli(["run", "--algo", "auto", "-i", str(path), "--seed", "1", "--json"]) == 0
    summary = json.loads(capfd.readouterr().out)
    assert summary["metadata"]["ensemble"]["choice"]["members"][0] == "pyod:iforest"
    assert run_cli(["run", "--algo", "hbos", "-i", str(path), "-o", out, "--explain-choice"]) == 0
    assert "no choice to explain: --algo hbos" in capfd.readouterr().err
