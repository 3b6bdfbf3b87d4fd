"""The core's online detectors: exact test-then-train, the batch protocol, and detection on streams."""

from __future__ import annotations

import importlib.util
import pickle
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import adcore
from adcore.builtin.online.base import prior_counts
from adcore.builtin.online.hstree import OnlineHST
from adcore.builtin.online.loda import OnlineLODA
from adcore.builtin.online.rshash import OnlineRSHash
from adcore.builtin.online.xstream import OnlineXStream
from adcore.domain.metrics import roc_auc
from adcore.errors import NotFittedError, ParameterError, SchemaMismatchError
from adcore.testing import registered_detectors

_SPEC = importlib.util.spec_from_file_location(
    "stream_data", Path(__file__).resolve().parents[1] / "benchmarks" / "stream_data.py"
)
stream_data = importlib.util.module_from_spec(_SPEC)
sys.modules.setdefault("stream_data", stream_data)
_SPEC.loader.exec_module(stream_data)

# small settings so that window swaps happen often in short tests
SMALL = {
    "loda": (OnlineLODA, {"n_projections": 20, "window_size": 64}),
    "rshash": (OnlineRSHash, {"n_components": 20, "window_size": 64}),
    "xstream": (OnlineXStream, {"n_components": 20, "n_chains": 10, "depth": 8, "window_size": 64}),
    "hst": (OnlineHST, {"n_trees": 10, "depth": 6, "window_size": 64}),
}
NAMES = sorted(SMALL)


def build(name: str, **overrides):
    cls, params = SMALL[name]
    return cls(**{**params, "random_state": 3, **overrides})


@pytest.fixture(scope="module")
def unscaled():
    """Correlated records in wildly different units, with a few far points."""
    rng = np.random.default_rng(11)
    latent = rng.normal(size=(400, 2))
    X = latent @ rng.normal(size=(2, 6)) + 0.1 * rng.normal(size=(400, 6))
    X[rng.choice(400, 8, replace=False)] += 6.0
    return X * np.array([1e-3, 1.0, 50.0, 1e4, 0.2, 7.0]) + np.array([0.0, -3.0, 1e3, 5e5, 0.0, 1.0])


def _split_scores(name: str, X: np.ndarray, sizes: list[int]) -> np.ndarray:
    detector = build(name)
    out, start = [], 0
    for size in sizes:
        out.append(detector.score_partial(X[start : start + size]))
        start += size
    assert start == len(X)
    return np.concatenate(out)


@pytest.mark.parametrize("name", NAMES)
def test_score_partial_in_batches_equals_one_record_at_a_time(name, unscaled):
    one_by_one = _split_scores(name, unscaled, [1] * len(unscaled))
    # whole; splits inside calibration (32 records), across it, and across window swaps (every 64)
    for sizes in ([400], [5, 20, 100, 275], [31, 1, 1, 61, 64, 64, 178], [63, 2, 130, 1, 204], [250, 150]):
        assert np.array_equal(_split_scores(name, unscaled, sizes), one_by_one), sizes
    assert np.all(np.isfinite(one_by_one))


@pytest.mark.parametrize("name", NAMES)
def test_score_partial_learns_like_partial_fit(name, unscaled):
    scored, fitted = build(name), build(name)
    scored.score_partial(unscaled[:300])
    fitted.partial_fit(unscaled[:150]).partial_fit(unscaled[150:300])
    assert np.array_equal(scored.decision_function(unscaled[300:]), fitted.decision_function(unscaled[300:]))


@pytest.mark.parametrize("name", NAMES)
def test_fit_forgets_then_learns(name, unscaled):
    fresh = build(name).fit(unscaled[200:])
    refitted = build(name).fit(unscaled[:200]).fit(unscaled[200:])
    assert np.array_equal(fresh.decision_function(unscaled), refitted.decision_function(unscaled))
    decision = fresh.decision_function(unscaled[:50])
    assert np.array_equal(decision, fresh.decision_function(unscaled[:50]))  # scoring learns nothing


@pytest.mark.parametrize("name", NAMES)
def test_scores_start_at_the_first_record_and_stay_finite(name, unscaled):
    detector = build(name)
    assert detector.min_records == 1
    first = detector.score_partial(unscaled[:3])
    assert np.all(np.isfinite(first))
    # before calibration ends, decision_function uses the provisional model too
    assert np.all(np.isfinite(detector.decision_function(unscaled[:10])))
    extreme = unscaled[:2] * 1e200
    assert np.all(np.isfinite(build(name).fit(unscaled).decision_function(extreme)))


@pytest.mark.parametrize("name", NAMES)
def test_values_near_the_float64_limit_score_finite_without_warnings(name):
    rng = np.random.default_rng(2)
    X = np.c_[np.where(rng.random(200) < 0.5, -1.7e308, 1.7e308), rng.normal(size=200), np.ones(200)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        detector = build(name)
        scores = detector.score_partial(X)
        later = detector.decision_function(X[:5] * 1e-300)
    assert np.all(np.isfinite(scores)) and np.all(np.isfinite(later))


def test_prior_counts_technique_matches_a_loop():
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 5, size=(50, 3)) + np.array([0, 5, 10])
    expected = np.array([[np.sum(keys[:i, s] == keys[i, s]) for s in range(3)] for i in range(50)])
    assert np.array_equal(prior_counts(keys), expected)


@pytest.mark.parametrize("name", NAMES)
def test_pickle_mid_stream_continues_identically(name, unscaled):
    detector = build(name)
    detector.score_partial(unscaled[:150])
    copy = pickle.loads(pickle.dumps(detector))
    assert np.array_equal(detector.score_partial(unscaled[150:]), copy.score_partial(unscaled[150:]))


@pytest.mark.parametrize("name", NAMES)
def test_seed_changes_the_model_and_fixes_it(name, unscaled):
    a = build(name, random_state=1).score_partial(unscaled)
    assert np.array_equal(a, build(name, random_state=1).score_partial(unscaled))
    assert not np.array_equal(a, build(name, random_state=2).score_partial(unscaled))


@pytest.mark.parametrize(
    ("name", "param", "value"),
    [
        ("loda", "n_projections", 0),
        ("loda", "n_bins", 1.5),
        ("rshash", "sample_size", 2),
        ("xstream", "depth", 65),
        ("hst", "depth", 0),
        ("hst", "window_size", 1),
        ("rshash", "scale_records", 0),
        ("loda", "random_state", "x"),
    ],
)
def test_bad_parameters_raise_parameter_error_naming_them(name, param, value, unscaled):
    with pytest.raises(ParameterError, match=param):
        build(name, **{param: value}).fit(unscaled)


@pytest.mark.parametrize("name", NAMES)
def test_unfitted_and_wrong_width_are_refused(name, unscaled):
    with pytest.raises(NotFittedError):
        build(name).decision_function(unscaled)
    detector = build(name).fit(unscaled)
    with pytest.raises(SchemaMismatchError):
        detector.score_partial(unscaled[:, :3])


@pytest.mark.parametrize("name", NAMES)
def test_registered_and_streamable_through_the_wrapper(name, unscaled):
    detector = adcore.create_detector(f"core:{name}", random_state=3)
    scores = detector.score_partial(unscaled[:100])
    assert scores.shape == (100,) and np.all(np.isfinite(scores))
    assert detector.min_records == 1
    assert np.all(np.isfinite(detector.decision_function(unscaled[100:])))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("anomaly", "drift"), [("point", "mean_shift"), ("point", "rotation"), ("dependency", "none")]
)
def test_prequential_detection_well_above_chance(name, anomaly, drift):
    stream = stream_data.make_stream(anomaly, drift, n=3000, d=6, seed=4)
    detector = {"loda": OnlineLODA, "rshash": OnlineRSHash, "xstream": OnlineXStream, "hst": OnlineHST}[name]
    model = detector(random_state=0)
    scores = np.concatenate([model.score_partial(stream.X[i : i + 500]) for i in range(0, 3000, 500)])
    floor = 0.9 if anomaly == "point" else 0.7
    assert roc_auc(stream.y, scores) > floor


def test_adcore_run_accepts_an_online_detector(unscaled):
    result = adcore.detect(unscaled, algo="core:xstream", seed=1, contamination=0.02)
    assert result.scores.shape == (len(unscaled),)
    assert set(np.flatnonzero(result.labels)) <= set(range(len(unscaled)))


def test_registered_as_core_detectors_so_the_conformance_kit_checks_them():
    # tests/test_conformance_core.py runs adcore.testing on every registered core detector
    assert {"core:hst", "core:loda", "core:rshash", "core:xstream"} <= set(registered_detectors("core"))
    from adcore.plugins import get_host

    for name in ("core:hst", "core:loda", "core:rshash", "core:xstream"):
        assert "online" in get_host().resolve("detector", name).metadata["tags"]
