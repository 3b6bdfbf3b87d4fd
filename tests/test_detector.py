"""The wrapper: thresholds, labels, validation, typed library errors, sklearn conventions, pickling."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

import adcore
from adcore.domain.detector import Detector, library_error
from adcore.errors import (
    AdcoreError,
    DataError,
    DataTypeError,
    NotFittedError,
    ParameterError,
    ParameterTypeError,
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
    with pytest.raises(SchemaMismatchError, match=r"X has 2 features, but Detector is expecting 3 features"):
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
    with pytest.raises(SchemaMismatchError, match="same order as they were in fit") as info:
        det.decision_function(frame[["b", "a", "c"]])
    assert str(info.value).splitlines()[0].startswith("X's columns differ from those core:hbos was fitted on")


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


# --------------------------------------------------------------------------- errors from the library
class Picky:
    """Refuses what its library would: a bad ``k`` when built, too few rows at fit, wide rows at scoring."""

    def __init__(self, k: int = 3, mode: str = "plain", random_state: int | None = None) -> None:
        if k < 1:
            raise ValueError(f"The 'k' parameter of Picky must be an int >= 1. Got {k} instead.\nsee docs")
        if not isinstance(mode, str) or mode not in ("plain", "typed", "bug", "adcore"):
            raise TypeError(f"'mode' must be one of plain, typed; got {mode!r}")
        self.k, self.mode = k, mode

    def fit(self, X, y=None):
        if X.shape[0] <= self.k:
            problem = f"Expected n_neighbors < n_samples_fit, but n_neighbors = {self.k}"
            if self.mode == "typed":
                raise TypeError(problem)
            if self.mode == "bug":
                raise KeyError("internal state")
            if self.mode == "adcore":
                raise ParameterError("already typed by a member")
            raise ValueError(problem + "\n  Traceback-like second line")
        self.mean_ = X.mean(axis=0)
        return self

    def decision_function(self, X):
        if X.shape[0] > 1000:
            raise ValueError("too many rows for this toy")
        return np.linalg.norm(X - self.mean_, axis=1)


def test_a_parameter_the_library_refuses_when_built_names_detector_and_parameter(X):
    with pytest.raises(ParameterError) as info:
        Detector(Picky, k=0).fit(X)
    err = info.value
    assert str(err) == "Picky: parameter 'k': The 'k' parameter of Picky must be an int >= 1. Got 0 instead."
    assert (err.algorithm, err.parameter) == ("Picky", "k")
    assert isinstance(err, ValueError) and not isinstance(err, TypeError)
    assert type(err.__cause__) is ValueError and "see docs" in str(err.__cause__)


def test_a_type_error_stays_a_type_error_and_a_value_error(X):
    with pytest.raises(ParameterTypeError) as info:
        Detector(Picky, mode="other").fit(X)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ParameterError)
    assert str(info.value).startswith("Picky: parameter 'mode': 'mode' must be one of")
    with pytest.raises(DataTypeError) as info:
        Detector(Picky, k=5, mode="typed").fit(X[:4])
    assert isinstance(info.value, TypeError) and isinstance(info.value, DataError)


def test_data_the_library_refuses_at_fit_or_scoring_is_a_data_error_on_one_line(X):
    with pytest.raises(DataError) as info:
        Detector(Picky, k=5).fit(X[:4])
    assert str(info.value) == (
        "Picky rejected the data (4 rows): Expected n_neighbors < n_samples_fit, but n_neighbors = 5"
    )
    assert info.value.parameter is None and type(info.value.__cause__) is ValueError
    fitted = Detector(Picky).fit(X)
    with pytest.raises(
        DataError, match=r"^Picky rejected the data \(1200 rows\): too many rows for this toy$"
    ):
        fitted.decision_function(np.zeros((1200, 3)))
    with pytest.raises(DataError, match=r"^Picky rejected the data \(1200 rows\)"):
        fitted.score_matrix(np.zeros((1200, 3)))  # the model store's path, input validated already


def test_other_exceptions_are_bugs_and_adcore_errors_pass_unchanged(X):
    with pytest.raises(KeyError, match="internal state") as info:
        Detector(Picky, k=5, mode="bug").fit(X[:4])
    assert not isinstance(info.value, AdcoreError)
    with pytest.raises(ParameterError) as info:
        Detector(Picky, k=5, mode="adcore").fit(X[:4])
    assert str(info.value) == "already typed by a member" and info.value.__cause__ is None


def test_library_error_matches_only_this_detectors_quoted_parameters():
    exc = ValueError("The 'n_jobs' parameter of Pool is bad; 'n_estimators' too")
    err = library_error(exc, "pyod:iforest", ["n_estimators", "contamination"], n_rows=10)
    assert isinstance(err, ParameterError) and err.parameter == "n_estimators"
    quoted_own = ValueError("'algorithm' is 'auto'")  # the wrapper's own argument, never passed on
    err = library_error(quoted_own, "pyod:knn", ["algorithm", "n_neighbors"], n_rows=1)
    assert isinstance(err, DataError) and str(err) == "pyod:knn rejected the data (1 row): " + str(quoted_own)
    err = library_error(ValueError(""), "x", [], n_rows=None)
    assert isinstance(err, ParameterError) and str(err) == "x rejected its parameters: ValueError"
    assert library_error(RuntimeError("boom"), "x", []) is None
    assert library_error(MemoryError(), "x", []) is None


class Forest:
    """scikit-learn's isolation forest, which validates its parameters in fit (InvalidParameterError)."""

    def __init__(self, n_estimators: int = 100, random_state: int | None = None) -> None:
        self.n_estimators, self.random_state = n_estimators, random_state

    def fit(self, X, y=None):
        from sklearn.ensemble import IsolationForest

        self.forest_ = IsolationForest(n_estimators=self.n_estimators).fit(X)
        return self

    def decision_function(self, X):
        return -self.forest_.score_samples(X)


def test_sklearn_invalid_parameter_error_is_typed_with_its_parameter(X):
    pytest.importorskip("sklearn")
    with pytest.raises(ParameterTypeError) as info:
        Detector(Forest, n_estimators=-1).fit(X)
    assert str(info.value) == (
        "Forest: parameter 'n_estimators': The 'n_estimators' parameter of IsolationForest must be "
        "an int in the range [1, inf). Got -1 instead."
    )
    assert type(info.value.__cause__).__name__ == "InvalidParameterError"


# --------------------------------------------------------------------------- scikit-learn's conventions
def test_not_fitted_error_is_a_value_error_and_an_attribute_error(X):
    with pytest.raises(NotFittedError) as info:
        Detector("core:hbos").predict(X)
    assert isinstance(info.value, ValueError) and isinstance(info.value, AttributeError)


def test_not_fitted_error_is_sklearns_once_sklearn_is_loaded_and_importing_adcore_loads_no_sklearn():
    pytest.importorskip("sklearn")
    probe = (
        "import sys, adcore.errors as e, adcore.domain.detector\n"
        "assert 'sklearn' not in sys.modules, 'adcore imported sklearn'\n"
        "from sklearn.exceptions import NotFittedError as Theirs\n"
        "assert issubclass(e.NotFittedError, Theirs)\n"
        "assert sys.modules['sklearn.exceptions'].__loader__.__class__.__name__ != '_AfterExec'\n"
        "import numpy as np\n"
        "try:\n"
        "    adcore.domain.detector.Detector('core:hbos').decision_function(np.ones((3, 2)))\n"
        "except Theirs as exc:\n"
        "    print(type(exc).__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "NotFittedError"


def test_not_fitted_error_subclasses_sklearns_when_sklearn_was_loaded_first():
    sklearn_exceptions = pytest.importorskip("sklearn.exceptions")
    assert issubclass(NotFittedError, sklearn_exceptions.NotFittedError)
    with pytest.raises(sklearn_exceptions.NotFittedError):
        Detector("core:hbos").decision_function(np.ones((3, 2)))


@pytest.mark.parametrize("one_d", [np.arange(5.0), [1.0, 2.0, 3.0]])
def test_1d_input_is_refused_with_reshape_advice(X, one_d):
    with pytest.raises(DataError, match="Expected 2D array, got 1D array instead") as info:
        Detector("core:hbos").fit(one_d)
    assert "Reshape your data either using array.reshape(-1, 1)" in str(info.value)
    assert len(str(info.value).splitlines()) == 1
    fitted = Detector("core:hbos").fit(X)
    with pytest.raises(DataError, match="Reshape your data"):
        fitted.predict(X[0])


def test_numeric_object_arrays_are_converted_and_other_objects_refused_as_type_errors(X):
    det = Detector("core:hbos").fit(X.astype(object))
    np.testing.assert_array_equal(det.decision_scores_, Detector("core:hbos").fit(X).decision_scores_)
    mixed = np.array([[1, 2.5], [np.float32(3), np.int64(4)], [5, 6], [7, None]], dtype=object)
    assert Detector("core:hbos").fit(mixed[:3]).n_features_in_ == 2
    bad = X.astype(object)
    bad[2, 1] = {"foo": "bar"}
    with pytest.raises(TypeError, match=r"argument must be .* string.* number") as info:
        Detector("core:hbos").fit(bad)
    assert isinstance(info.value, DataError) and "row 2, column 1" in str(info.value)
    words = X.astype(object)
    words[0, 0] = "x"
    with pytest.raises(DataError, match="'x' is not a number") as info:
        Detector("core:hbos").fit(words)
    assert not isinstance(info.value, TypeError)


def test_complex_empty_and_sparse_data_are_refused_in_sklearns_words():
    with pytest.raises(DataError, match="Complex data not supported"):
        Detector("core:hbos").fit(np.ones((5, 2)) + 1j)
    with pytest.raises(DataError, match=r"0 sample\(s\) \(shape=\(0, 3\)\) while a minimum of 1 is required"):
        Detector("core:hbos").fit(np.empty((0, 3)))
    with pytest.raises(
        DataError, match=r"0 feature\(s\) \(shape=\(12, 0\)\) while a minimum of 1 is required"
    ):
        Detector("core:hbos").fit(np.empty((12, 0)))
    with pytest.raises(DataError, match=r"got 1 sample$"):
        Detector("core:hbos").fit(np.ones((1, 3)))
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(DataTypeError, match="Sparse data was passed for X, but dense data is required"):
        Detector("core:hbos").fit(sparse.csr_matrix(np.eye(5)))


def test_feature_names_follow_sklearns_rules_and_words(X):
    pd = pytest.importorskip("pandas")
    names = ["a", "b", "c"]
    det = Detector("core:hbos").fit(pd.DataFrame(X, columns=names))
    assert det.feature_names_in_.dtype == object and list(det.feature_names_in_) == names
    renamed = pd.DataFrame(X, columns=["a", "b", "z"])
    with pytest.raises(SchemaMismatchError) as info:
        det.predict(renamed)
    lines = str(info.value).splitlines()
    assert lines[0] == (
        "X's columns differ from those core:hbos was fitted on (unseen at fit: 'z'; missing: 'c'). "
        "The feature names should match those that were passed during fit."
    )
    assert lines[1:] == [
        "Feature names unseen at fit time:",
        "- z",
        "Feature names seen at fit time, yet now missing:",
        "- c",
    ]
    with pytest.raises(SchemaMismatchError, match="yet now missing:\n- c\n"):
        det.predict(pd.DataFrame(X[:, :2], columns=["a", "b"]))  # the names are checked first
    with pytest.warns(UserWarning, match="X does not have valid feature names, but Detector was fitted"):
        det.predict(X)
    np.testing.assert_array_equal(det.check_input(pd.DataFrame(X, columns=names)), X)  # explain's way in
    with pytest.raises(SchemaMismatchError, match="unseen at fit: 'z'"):
        det.check_input(renamed)
    assert not hasattr(Detector("core:hbos").fit(pd.DataFrame(X)), "feature_names_in_")  # integer columns
    det.fit(X)
    assert not hasattr(det, "feature_names_in_")  # refitted without names: the old ones are gone
    with pytest.warns(UserWarning, match="X has feature names, but Detector was fitted without"):
        det.predict(pd.DataFrame(X, columns=names))


def test_labels_of_any_array_like_reach_a_detector_as_an_array(X):
    seen = []

    class Supervised(MaxAbs):
        def fit(self, X, y=None):
            seen.append(type(y))
            return super().fit(X)

    Detector(Supervised).fit(X, list(range(len(X))))
    Detector(MaxAbs).fit(X, list(range(len(X))))  # no y in fit: never passed
    assert seen == [np.ndarray]


@pytest.fixture
def picky_plugin():
    """``test:picky`` registered in-process, so an ensemble can name it as a member."""
    import types

    from adcore.plugins import PluginHost, set_host

    plugin = types.ModuleType("picky_plugin")
    source = "import adcore\n@adcore.hookimpl\ndef register_detectors(register):\n"
    source += f"    register('picky', '{__name__}:Picky')\n"
    exec(source, plugin.__dict__)
    host = PluginHost(autoload=False)
    host.load()
    host.add_plugin(plugin, "test")
    set_host(host)
    yield host
    set_host(None)


@pytest.mark.parametrize("jobs", [1, 2])
def test_an_ensemble_members_typed_error_passes_through_unchanged(X, picky_plugin, jobs):
    ensemble = Detector(
        "core:ensemble",
        members=["test:picky", "core:hbos"],
        member_params={"test:picky": {"k": 500}},
        jobs=jobs,
    )
    with pytest.raises(DataError) as info:
        ensemble.fit(X)
    assert str(info.value).startswith("test:picky rejected the data (300 rows): Expected n_neighbors")
    assert type(info.value.__cause__) is ValueError  # the library's own, not a wrapped adcore error


def test_a_parameter_the_user_set_is_named_when_the_library_shows_its_value():
    """scikit-learn's neighbour searches do not quote the name: "n_neighbors = 100000"."""
    text = "Expected n_neighbors < n_samples_fit, but n_neighbors = 100000, n_samples_fit = 1831"
    err = library_error(ValueError(text), "pyod:knn", ["n_neighbors"], n_rows=1831, given=["n_neighbors"])
    assert isinstance(err, ParameterError) and err.parameter == "n_neighbors"
    assert str(err) == f"pyod:knn: parameter 'n_neighbors': {text}"
    not_set = library_error(ValueError(text), "pyod:knn", ["n_neighbors"], n_rows=1831)
    assert isinstance(not_set, DataError) and not_set.parameter is None  # the default: the data is small


def test_explanation_baseline_of_a_column_spanning_the_float_range_is_finite():
    """np.median averages the two middle values: +-1.7e308 overflowed to an infinite baseline,
    and `adcore explain` then refused its own baseline as 'infinite value'."""
    X = np.random.default_rng(0).normal(size=(100, 3))
    X[:50, 0], X[50:, 0] = 1.7e308, -1.7e308
    detector = Detector("core:hbos").fit(X)
    assert np.all(np.isfinite(detector.feature_medians_)) and detector.feature_medians_[0] == 0.0


def test_refits_reuse_a_validation_but_every_changed_parameter_is_validated_again():
    """A stream refits a fresh detector per window: validation is cached per parameter set."""
    X = np.random.default_rng(0).normal(size=(200, 3))
    first = Detector("core:hbos", n_bins=12).fit(X)
    again = Detector("core:hbos", n_bins=12).fit(X)  # served from the cache: the same model
    np.testing.assert_array_equal(first.decision_scores_, again.decision_scores_)
    with pytest.raises(ParameterError, match="n_bins"):
        Detector("core:hbos", n_bins=1).fit(X)
    with pytest.raises(ParameterError, match="contamination"):
        Detector("core:hbos", n_bins=12, contamination=0.7).fit(X)
    with pytest.raises(ParameterError, match="threshold"):
        Detector("core:hbos", n_bins=12, threshold="nope").fit(X)
    first.set_params(n_bins=1)
    with pytest.raises(ParameterError, match="n_bins"):
        first.fit(X)
    assert Detector("core:hbos", n_bins=12).fit(X).estimator_.n_bins == 12  # the cache survived


def test_a_pickled_detector_leaves_its_resolved_registration_behind():
    detector = Detector("core:hbos").fit(np.random.default_rng(1).normal(size=(50, 2)))
    assert "_resolved" in vars(detector)  # resolved once per fit, not three times
    restored = pickle.loads(pickle.dumps(detector))
    assert "_resolved" not in vars(restored)
    np.testing.assert_array_equal(
        restored.decision_function([[0.0, 9.0]]), detector.decision_function([[0.0, 9.0]])
    )
    restored.fit(np.random.default_rng(2).normal(size=(50, 2)))  # resolves again where it runs


def test_the_validation_cache_stays_bounded_over_many_parameter_sets():
    from adcore.plugins import get_host

    X = np.random.default_rng(3).normal(size=(60, 2))
    for n_bins in range(2, 400):
        Detector("core:hbos", n_bins=n_bins).fit(X)
    derived = get_host().resolve("detector", "core:hbos").derived
    assert len([k for k in derived if isinstance(k, tuple)]) <= 257
    assert Detector("core:hbos", n_bins=5).fit(X).estimator_.n_bins == 5


def test_top_anomalies_are_the_head_of_anomalies_without_building_the_rest():
    rng = np.random.default_rng(4)
    X = np.vstack([rng.normal(size=(300, 3)), rng.normal(6, 1, size=(30, 3))])
    result = adcore.detect(X, algo="core:hbos", contamination=0.1)
    everything = result.anomalies
    assert len(everything) == result.n_anomalies > 10
    for k in (0, 1, 10, len(everything), len(everything) + 5):
        assert result.top_anomalies(k) == everything[:k]
    assert result.top_anomalies(None) == everything
    scores = [a.score for a in everything]
    assert scores == sorted(scores, reverse=True)


def test_a_results_confidence_is_computed_when_read_and_matches_the_detectors():
    import pickle

    from adcore.services.detect import fit_detect

    rng = np.random.default_rng(5)
    X = np.vstack([rng.normal(size=(400, 3)), rng.normal(5, 1, size=(20, 3))])
    detector = Detector("core:hbos", random_state=0)
    result = fit_detect(detector, adcore.Dataset.from_array(X))
    top = result.top_anomalies(5)  # only these rows' confidences are needed for a summary
    assert "_confidence_stored" not in result.__dict__ or result.__dict__["_confidence_stored"] is None
    full = detector.predict_confidence()
    assert [a.confidence for a in top] == full[[a.index for a in top]].tolist()
    assert np.array_equal(result.confidence, full)  # the whole array, on first read
    fresh = fit_detect(Detector("core:hbos", random_state=0), adcore.Dataset.from_array(X))
    copy = pickle.loads(pickle.dumps(fresh))  # values travel, the detector does not
    assert copy.confidence_of is None and np.array_equal(copy.confidence, full)
    assert len(pickle.dumps(fresh)) < len(pickle.dumps(detector))
    given = adcore.DetectionResult(
        "a", {}, np.array([1.0, 2.0]), np.array([0, 1]), 1.5, confidence=np.array([0.6, 0.9])
    )
    assert given.confidence.tolist() == [0.6, 0.9] and given.confidence_at(np.array([1])).tolist() == [0.9]
    bare = adcore.DetectionResult("a", {}, np.array([1.0, 2.0]), np.array([0, 1]), 1.5)
    assert bare.confidence is None and bare.confidence_at(np.array([0, 1])).tolist() == [1.0, 1.0]
