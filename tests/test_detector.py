"""The wrapper: thresholds, labels, validation, sklearn compatibility, pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import adcore
from adcore.detector import Detector
from adcore.errors import (
    DataError,
    NotFittedError,
    ParameterError,
    SchemaMismatchError,
    UnknownAlgorithmError,
)


class MaxAbs:
    def fit(self, X, y=None):
        self.median_ = np.median(X, axis=0)
        self.mad_ = np.median(np.abs(X - self.median_), axis=0) + 1e-12
        return self

    def decision_function(self, X):
        return np.abs((X - self.median_) / self.mad_).max(axis=1)


@pytest.fixture
def X():
    rng = np.random.default_rng(3)
    data = rng.normal(size=(300, 3))
    data[:6] += 7
    return data


def test_wrapper_adds_threshold_labels_and_predict(X):
    det = Detector(MaxAbs, contamination=0.05).fit(X)
    assert det.decision_scores_.shape == (300,)
    assert det.threshold_ == pytest.approx(np.percentile(det.decision_scores_, 95))
    assert det.labels_.sum() == 15
    assert set(range(6)) <= set(np.flatnonzero(det.labels_))
    np.testing.assert_array_equal(det.predict(X), det.labels_)
    np.testing.assert_array_equal(det.fit_predict(X), det.labels_)
    proba = det.predict_proba(X)
    assert proba.shape == (300, 2) and np.allclose(proba.sum(axis=1), 1)
    assert proba[:6, 1].min() > proba[6:, 1].mean()
    unify = det.predict_proba(X, method="unify")
    assert ((unify >= 0) & (unify <= 1)).all()
    conf = det.predict_confidence(X)
    assert ((conf >= 0.5) & (conf <= 1)).all()
    assert conf[np.argmax(det.decision_scores_)] == 1.0


def test_registered_name_and_params(X):
    det = adcore.create_detector("core:hbos", n_bins=5)
    det.fit(X)
    assert det.estimator_.n_bins == 5
    assert det.algorithm_name == "core:hbos"
    with pytest.raises(ParameterError, match="did you mean 'n_bins'"):
        adcore.create_detector("hbos", nbins=5)
    with pytest.raises(ParameterError, match="n_bins"):
        adcore.create_detector("hbos", n_bins=1)
    with pytest.raises(ParameterError, match="contamination"):
        adcore.create_detector("hbos", contamination=0.7)
    with pytest.raises(UnknownAlgorithmError):
        adcore.create_detector("nope")


def test_automatic_threshold(X):
    det = Detector("core:mad", threshold="mad").fit(X)
    s = det.decision_scores_
    med = np.median(s)
    assert det.threshold_ == pytest.approx(med + 3 * 1.4826 * np.median(np.abs(s - med)))


def test_input_validation(X):
    det = Detector("core:hbos")
    with pytest.raises(NotFittedError):
        det.decision_function(X)
    det.fit(X)
    with pytest.raises(SchemaMismatchError, match=r"2 features.*fitted with 3"):
        det.decision_function(X[:, :2])
    bad = X.copy()
    bad[4, 1] = np.nan
    with pytest.raises(DataError):
        det.decision_function(bad)
    with pytest.raises(DataError, match="at least 2 rows"):
        Detector("core:hbos").fit(X[:1])


def test_dataframe_feature_names_are_checked(X):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    det = Detector("core:hbos").fit(frame)
    assert list(det.feature_names_in_) == ["a", "b", "c"]
    with pytest.raises(SchemaMismatchError, match="feature names differ"):
        det.decision_function(frame[["b", "a", "c"]])


def test_get_set_params_and_pickle(X):
    det = Detector("core:hbos", contamination=0.2, n_bins=7)
    assert det.get_params() == {
        "algorithm": "core:hbos",
        "contamination": 0.2,
        "threshold": "contamination",
        "random_state": None,
        "n_bins": 7,
    }
    det.set_params(n_bins=9, alpha=0.2)
    det.fit(X)
    assert (det.estimator_.n_bins, det.estimator_.alpha) == (9, 0.2)
    again = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(again.decision_function(X), det.decision_function(X))


def test_sklearn_clone_and_pipeline(X):
    pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    det = Detector("core:hbos", n_bins=12, contamination=0.05)
    twin = clone(det)
    assert twin.get_params() == det.get_params() and twin is not det
    pipe = make_pipeline(StandardScaler(), Detector("core:mahalanobis")).fit(X)
    scores = pipe.decision_function(X)
    assert scores.shape == (300,) and set(np.argsort(-scores)[:6]) == set(range(6))
    assert pipe.predict(X).sum() == 30


def test_detect_api(X):
    result = adcore.detect(X, algo="core:hbos", contamination=0.05)
    assert result.n_samples == 300 and result.n_anomalies == 15
    assert result.anomalies[0].score == result.scores.max()
    assert result.metadata["versions"]["adcore"] == adcore.__version__
    d = result.to_dict()
    assert d["algorithm"] == "core:hbos" and len(d["scores"]) == 300
    import json

    json.dumps(d)
