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
    assert any("x1.8 for pyod:iforest" in r for r in choice["reasons"])


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


def test_past_max_fit_rows_members_fit_on_a_sample_and_score_every_row(pyod_pool):
    X, y = make_anomalies("local", n_samples=3000, n_features=6, seed=12)
    full = _fit(X)
    sampled = _fit(X, max_fit_rows=600).estimator_
    assert any("3000 rows > 600" in r for r in sampled.choice_["reasons"])
    anchor, *others = sampled.members_
    assert anchor.decision_scores_.shape == (3000,)  # the anchor sees every row
    assert all(m.decision_scores_.shape == (600,) for m in others)
    assert sampled.member_scores_.shape == (3000, len(sampled.member_names_))
    assert sampled.decision_scores_.shape == (3000,)
    assert roc_auc(y, sampled.decision_scores_) > roc_auc(y, full.decision_scores_) - 0.03


def test_a_sample_is_repeatable_with_a_seed(pyod_pool):
    X, _ = make_anomalies("global", n_samples=1500, n_features=4, seed=13)
    first, second = _fit(X, max_fit_rows=300), _fit(X, max_fit_rows=300)
    assert np.array_equal(first.decision_scores_, second.decision_scores_)


def test_a_sampled_row_keeps_its_fit_time_score(pyod_pool):
    # kNN distance: a fitted row scored again as new data finds itself at distance 0, so its
    # score is its (k-1)-th neighbour's, biased low against the rows outside the sample
    X = np.random.default_rng(14).normal(size=(3000, 6))
    sampled = _fit(X, max_fit_rows=600).estimator_
    rows = sampled.sample_indices_
    assert rows.shape == (600,) and np.array_equal(rows, np.unique(rows))
    position = sampled.member_names_.index("pyod:knn")
    knn = sampled.member_scores_[:, position]
    outside = np.setdiff1d(np.arange(len(X)), rows)
    assert abs(knn[rows].mean() / knn[outside].mean() - 1) < 0.015
    rescored = sampled.members_[position].decision_function(X[rows])
    assert rescored.mean() / knn[outside].mean() < 0.975  # what keeping the fit-time score avoids


def test_members_library_warnings_go_to_the_reasons_not_to_stderr(pyod_pool, recwarn):
    X, _ = make_anomalies("global", n_samples=400, n_features=4, seed=15)
    X = np.column_stack([X, X[:, 0]])  # a repeated column: MCD's covariance is singular
    choice = _fit(X).estimator_.choice_
    noted = [r for r in choice["reasons"] if "libraries warned" in r]
    assert noted and "covariance matrix" in noted[0]
    assert not [w for w in recwarn if "covariance" in str(w.message)]


def test_without_algo_run_and_fit_use_auto(pyod_pool, tmp_path, capfd):
    from adcore.cli.main import run_cli

    X, _ = make_anomalies("global", n_samples=200, n_features=3, seed=4)
    path = tmp_path / "x.csv"
    np.savetxt(path, X, delimiter=",", header="a,b,c", comments="")
    implicit, explicit = str(tmp_path / "implicit.csv"), str(tmp_path / "explicit.csv")
    assert run_cli(["run", "-i", str(path), "-o", implicit, "--seed", "3"]) == 0
    assert capfd.readouterr().err.startswith("core:auto: ")
    assert run_cli(["run", "--algo", "auto", "-i", str(path), "-o", explicit, "--seed", "3"]) == 0
    assert (tmp_path / "implicit.csv").read_text() == (tmp_path / "explicit.csv").read_text()
    store = str(tmp_path / "models")
    assert run_cli(["fit", "-i", str(path), "--model", "m", "--store", store, "--seed", "3"]) == 0
    assert capfd.readouterr().out.strip() == "m@1"
    assert run_cli(["models", "show", "m", "--store", store, "--json"]) == 0
    assert json.loads(capfd.readouterr().out)["algorithm"] == "core:auto"


def test_a_time_series_defaults_to_ts_auto():
    from adcore.cli.options import algo_or_default

    assert algo_or_default(None, None, None) == "auto"
    assert algo_or_default(None, "timestamp", None) == "ts:auto"
    assert algo_or_default(None, None, "host") == "ts:auto"
    assert algo_or_default("core:hbos", "timestamp", None) == "core:hbos"


@pytest.mark.filterwarnings("ignore")  # MCD's warnings pass here, as intended
def test_off_the_main_thread_warnings_are_left_alone(pyod_pool):
    # catch_warnings swaps process-wide state: two overlapping fits in a server's worker
    # threads would restore each other's, so only the main thread (the CLI) captures
    import threading
    import warnings

    X, _ = make_anomalies("global", n_samples=400, n_features=4, seed=15)
    X = np.column_stack([X, X[:, 0]])
    filters = list(warnings.filters)
    out: dict = {}
    worker = threading.Thread(target=lambda: out.update(choice=_fit(X).estimator_.choice_))
    worker.start()
    worker.join()
    assert not [r for r in out["choice"]["reasons"] if "libraries warned" in r]
    assert warnings.filters == filters
