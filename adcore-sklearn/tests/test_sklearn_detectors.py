"""Scores are scikit-learn's own, oriented so that higher means more anomalous."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import adcore
import numpy as np
import pytest
from sklearn.covariance import EllipticEnvelope
from sklearn.ensemble import IsolationForest
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import SGDOneClassSVM
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import Pipeline
from sklearn.svm import OneClassSVM

SEED = 3


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 5))
    X[:6] += 7.0
    new = rng.normal(size=(40, 5))
    new[:4] -= 7.0
    return X, new


def fitted(algo: str, X: np.ndarray, **params: object) -> adcore.Detector:
    return adcore.create_detector(f"sklearn:{algo}", random_state=SEED, **params).fit(X)


@pytest.mark.parametrize(
    ("algo", "reference"),
    [
        ("iforest", lambda: IsolationForest(random_state=SEED)),
        ("ocsvm", lambda: OneClassSVM()),
        ("elliptic", lambda: EllipticEnvelope(random_state=SEED)),
        (
            "sgd-ocsvm",
            lambda: Pipeline(
                [("nystroem", Nystroem(random_state=SEED)), ("sgd", SGDOneClassSVM(random_state=SEED))]
            ),
        ),
    ],
)
def test_scores_are_negated_score_samples(data, algo, reference):
    X, new = data
    estimator = reference().fit(X)
    detector = fitted(algo, X)
    np.testing.assert_allclose(detector.decision_scores_, -estimator.score_samples(X), rtol=1e-12)
    np.testing.assert_allclose(detector.decision_function(new), -estimator.score_samples(new), rtol=1e-12)
    assert detector.decision_scores_[:6].min() > np.median(detector.decision_scores_)  # outliers score high


def test_lof_runs_in_novelty_mode_and_reports_the_lof(data):
    X, new = data
    lof = LocalOutlierFactor(novelty=True).fit(X)
    detector = fitted("lof", X)
    # training rows: each row's LOF with itself left out of its neighbourhood
    np.testing.assert_allclose(detector.decision_scores_, -lof.negative_outlier_factor_, rtol=1e-12)
    # new rows: scored against the training rows
    np.testing.assert_allclose(detector.decision_function(new), -lof.score_samples(new), rtol=1e-12)
    assert detector.decision_function(new)[:4].min() > 2.0  # far new points have LOF well above 1


def test_lof_training_scores_match_novelty_scoring_of_unseen_copies():
    """What 'as closely as sklearn allows' means: a training row's score is its LOF with the row
    left out of its own neighbourhood (negative_outlier_factor_), close to the LOF it would get as
    a new point had it not been in the training set; score_samples on the training rows would
    instead count each row as its own nearest neighbour (at distance 0) and bias the LOFs low."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(120, 3))
    detector = fitted("lof", X, n_neighbors=10)
    i = 17
    rest = np.delete(X, i, axis=0)
    loo = LocalOutlierFactor(n_neighbors=10, novelty=True).fit(rest)
    as_new = -loo.score_samples(X[i : i + 1])[0]
    # equal up to the neighbours' own reachability, which still includes row i in the full fit
    assert abs(detector.decision_scores_[i] - as_new) < 0.1 * as_new
    in_sample = -LocalOutlierFactor(n_neighbors=10, novelty=True).fit(X).score_samples(X)
    assert np.mean(in_sample < detector.decision_scores_) > 0.75  # in-sample scores are biased low
    assert in_sample.mean() < detector.decision_scores_.mean()


def test_parameters_reach_scikit_learn(data):
    X, _ = data
    detector = fitted("iforest", X, n_estimators=17, max_samples=64)
    assert detector.estimator_.estimator_.n_estimators == 17
    assert detector.estimator_.estimator_.max_samples == 64
    sgd = fitted("sgd-ocsvm", X, n_components=20, nu=0.2, gamma=0.5)
    pipeline = sgd.estimator_.estimator_
    assert pipeline.named_steps["nystroem"].n_components == 20
    assert pipeline.named_steps["nystroem"].gamma == 0.5
    assert pipeline.named_steps["sgd"].nu == 0.2
    assert pipeline.named_steps["nystroem"].random_state == pipeline.named_steps["sgd"].random_state == SEED


def test_bad_parameters_are_caught_before_any_data():
    from adcore.errors import ParameterError

    with pytest.raises(ParameterError, match="nu"):
        adcore.create_detector("sklearn:ocsvm", nu=1.5)
    with pytest.raises(ParameterError, match="did you mean 'n_neighbors'"):
        adcore.create_detector("sklearn:lof", n_neighbours=5)
    with pytest.raises(ParameterError):
        adcore.create_detector("sklearn:lof", novelty=False)  # always novelty mode: not a parameter


def test_registration_and_description_import_no_sklearn():
    code = (
        "import json, sys; from adcore.services.catalog import list_algorithms, describe_algorithm; "
        "list_algorithms(); [describe_algorithm(f'sklearn:{n}') for n in "
        "('iforest', 'lof', 'ocsvm', 'sgd-ocsvm', 'elliptic')]; print(json.dumps(sorted(sys.modules)))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = {m.split(".")[0] for m in json.loads(proc.stdout)}
    assert not loaded & {"sklearn", "scipy", "numpy"}, sorted(loaded & {"sklearn", "scipy", "numpy"})
