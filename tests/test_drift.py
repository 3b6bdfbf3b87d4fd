"""Tests for adcore.domain.drift: detection, quiet stationary streams, reset, batching, parameter checks.

All streams are seeded N(0, 1) data with a known change point, so "finds the change" and
"stays quiet" are checked at the default settings the streaming service will use.
"""

from __future__ import annotations

import itertools
import json
import math
from types import ModuleType

import numpy as np
import pytest

from adcore.domain.drift import (
    ADWIN,
    DRIFT_DETECTORS,
    DriftDetector,
    DriftSignal,
    KSDrift,
    PageHinkley,
    PSIDrift,
    create_drift_detector,
    kolmogorov_sf,
    ks_statistic,
)
from adcore.errors import DataError, ParameterError, SchemaMismatchError

CHANGE = 5_000
N = 10_000
ALL = ("ks", "psi", "adwin", "page-hinkley")
# Bounded delay (records after the change point) at the defaults, micro-batches of 100. The
# window tests run every 300 values here (>= window // 2 new values, whole batches), so
# their bound is a few windows; the sequential detectors localise a 1-sigma shift within
# a few clock ticks / a few dozen values.
MAX_DELAY = {"ks": 1_500, "psi": 1_500, "adwin": 400, "page-hinkley": 150}


def feed(detector: DriftDetector, x: np.ndarray, batch: int = 100) -> list[DriftSignal]:
    out: list[DriftSignal] = []
    for start in range(0, len(x), batch):
        out.extend(detector.update(x[start : start + batch]))
    return out


def stream(seed: int, kind: str = "mean", n: int = N, features: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features) if features else n)
    post = x[CHANGE:] if not features else x[CHANGE:, 3]
    if kind == "mean":
        post += 1.0
    elif kind == "variance":
        post *= 2.0
    elif kind != "none":
        raise AssertionError(kind)
    return x


def assert_detected(signals: list[DriftSignal], name: str) -> DriftSignal:
    assert signals, f"{name}: no drift detected"
    first = signals[0]
    assert CHANGE <= first.index <= CHANGE + MAX_DELAY[name], [s.index for s in signals]
    assert first.detector == name
    assert first.statistic > first.threshold
    return first


# --- (a) real shifts are found ---------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mean_shift_detected_after_change_within_bounded_delay(name: str, seed: int) -> None:
    signals = feed(create_drift_detector(name), stream(seed, "mean"))
    assert_detected(signals, name)


@pytest.mark.parametrize("name", ["ks", "psi"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_variance_change_detected_by_window_tests(name: str, seed: int) -> None:
    signals = feed(create_drift_detector(name), stream(seed, "variance"))
    assert_detected(signals, name)


@pytest.mark.parametrize("name", ["ks", "psi"])
@pytest.mark.parametrize("seed", [0, 1])
def test_per_feature_drift_names_the_drifted_feature(name: str, seed: int) -> None:
    names = ["age", "amount", "latency", "score", "count"]
    det = create_drift_detector(name, feature_names=names)
    first = assert_detected(feed(det, stream(seed, "mean", features=5)), name)
    assert first.feature == "score"
    if name == "ks":
        assert first.p_value is not None and first.p_value < det.alpha


def test_unnamed_features_get_positional_names() -> None:
    first = feed(KSDrift(), stream(0, "mean", features=5))[0]
    assert first.feature == "feature_3"
    assert feed(KSDrift(), stream(0, "mean"))[0].feature is None  # 1-D scores have no feature


@pytest.mark.parametrize("direction", ["both", "down"])
def test_page_hinkley_detects_decreases(direction: str) -> None:
    x = stream(4, "none")
    x[CHANGE:] -= 1.0
    assert_detected(PageHinkley(direction=direction).update(x), "page-hinkley")
    assert not PageHinkley(direction="up").update(x)


def test_adwin_detects_decrease_and_both_shifts_of_a_two_change_stream() -> None:
    x = stream(5, "mean", n=15_000)
    x[10_000:] -= 2.0
    idx = [s.index for s in ADWIN().update(x)]
    assert len(idx) == 2
    assert CHANGE <= idx[0] <= CHANGE + 400
    assert 10_000 <= idx[1] <= 10_000 + 400


# --- (b) stationary streams stay quiet -------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("seed", [10, 11, 12, 13, 14])
def test_stationary_stream_raises_no_signal_at_defaults(name: str, seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=20_000)
    assert feed(create_drift_detector(name), x) == []


def test_stationary_per_feature_stream_is_quiet() -> None:
    x = np.random.default_rng(20).normal(size=(20_000, 5))
    assert feed(KSDrift(), x) == []
    assert feed(PSIDrift(), x) == []


# --- (c) reset -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ks", "psi"])
def test_window_tests_fire_once_then_adopt_the_window_as_reference(name: str) -> None:
    # The shift persists but is not reported on every batch: once, or twice when the first
    # window straddled the change point (that mixed window became the reference, and the
    # next, purely post-change window differs from it too), then never again.
    for seed in range(3):
        signals = feed(create_drift_detector(name), stream(seed, "mean", n=20_000))
        assert 1 <= len(signals) <= 2
        assert signals[-1].index < CHANGE + 2_000


@pytest.mark.parametrize("name", ["ks", "psi"])
def test_reset_with_new_reference_and_global_index(name: str) -> None:
    rng = np.random.default_rng(7)
    det = create_drift_detector(name, reference=rng.normal(size=2_000))
    shifted = rng.normal(1.0, 1.0, size=3_000)
    first = feed(det, shifted)
    assert first and first[0].index < 1_000
    det.reset(rng.normal(1.0, 1.0, size=2_000))  # retrained on the new regime
    assert feed(det, rng.normal(1.0, 1.0, size=5_000)) == []
    back = feed(det, rng.normal(0.0, 1.0, size=2_000))
    assert back and 8_000 <= back[0].index < 10_000  # index counts from construction


@pytest.mark.parametrize("name", ["ks", "psi"])
def test_reset_without_reference_takes_next_window(name: str) -> None:
    det = create_drift_detector(name, window=200)
    rng = np.random.default_rng(8)
    assert feed(det, rng.normal(size=1_000)) == []
    det.reset()
    assert feed(det, rng.normal(5.0, 1.0, size=1_000)) == []  # the new regime is the reference
    assert feed(det, rng.normal(0.0, 1.0, size=400))


def test_reference_given_at_construction_is_used() -> None:
    ref = np.random.default_rng(9).normal(size=1_000)
    det = KSDrift(reference=ref, window=100)
    signals = det.update(np.random.default_rng(10).normal(2.0, 1.0, size=100))
    assert len(signals) == 1 and signals[0].index == 99


@pytest.mark.parametrize("name", ALL)
def test_caller_may_reuse_its_batch_buffer(name: str) -> None:
    # The service may fill one preallocated array per micro-batch: detectors must copy.
    x = stream(21, "mean")
    expected = [s.index for s in feed(create_drift_detector(name), x)]
    det, buf, got = create_drift_detector(name), np.empty(100), []
    for start in range(0, len(x), 100):
        buf[:] = x[start : start + 100]
        got.extend(s.index for s in det.update(buf))
    assert got == expected and got


def test_adwin_reset_reference_prefills_the_window() -> None:
    rng = np.random.default_rng(11)
    det = ADWIN()
    assert det.update(rng.normal(1.0, 1.0, size=2_000)) == []  # no history: nothing to compare
    det.reset(rng.normal(size=3_000))
    assert det.width == 3_000
    signals = det.update(rng.normal(1.0, 1.0, size=500))
    assert signals and 2_000 <= signals[0].index < 2_200
    det.reset()
    assert det.width == 0 and det.update(rng.normal(1.0, 1.0, size=2_000)) == []


def test_page_hinkley_reset_reference_anchors_the_mean() -> None:
    rng = np.random.default_rng(12)
    x = rng.normal(1.0, 1.0, size=2_000)
    assert PageHinkley().update(x) == []  # a constant mean is no change
    det = PageHinkley()
    det.update(rng.normal(size=100))
    det.reset(rng.normal(size=5_000))
    signals = det.update(x)
    assert signals and 100 <= signals[0].index < 100 + 100


# --- (d) batch boundaries do not matter for the sequential detectors -------------------------


def two_change_stream(seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=12_000)
    x[4_000:] += 1.0
    x[8_000:] -= 1.5
    return x


@pytest.mark.parametrize("cls", [ADWIN, PageHinkley])
def test_batch_boundaries_do_not_change_detections(cls: type) -> None:
    x = two_change_stream(13)
    det = cls()
    one_by_one = [s for v in x for s in det.update(np.array([v]))]
    batched = feed(cls(), x, batch=1_000)
    whole = cls().update(x)
    assert [s.index for s in one_by_one] == [s.index for s in batched] == [s.index for s in whole]
    assert len(whole) >= 2
    for a, b, c in zip(one_by_one, batched, whole, strict=True):  # statistics too, up to rounding
        assert a.statistic == pytest.approx(b.statistic, rel=1e-9) == c.statistic


def river_page_hinkley(x: np.ndarray, delta: float, threshold: float, alpha: float, min_n: int) -> list[int]:
    """river's per-value PageHinkley loop (river starts the max at -1; the textbook, and we, at -inf)."""
    hits, n, mean, s_up, s_down, lo, hi = [], 0, 0.0, 0.0, 0.0, math.inf, -math.inf
    for i, v in enumerate(x.tolist()):
        n += 1
        mean += (v - mean) / n
        s_up = alpha * s_up + v - mean - delta
        s_down = alpha * s_down + v - mean + delta
        lo, hi = min(lo, s_up), max(hi, s_down)
        if n >= min_n and (s_up - lo > threshold or hi - s_down > threshold):
            hits.append(i)
            n, mean, s_up, s_down, lo, hi = 0, 0.0, 0.0, 0.0, math.inf, -math.inf
    return hits


@pytest.mark.parametrize(
    ("delta", "threshold", "alpha"), [(0.25, 30.0, 1.0), (0.005, 50.0, 1 - 1e-4), (0.1, 5.0, 0.5)]
)
def test_page_hinkley_vectorised_equals_per_value_recursion(
    delta: float, threshold: float, alpha: float
) -> None:
    # alpha=0.5 makes the discount chunks ~430 values long, so chunk joins are exercised too.
    x = two_change_stream(14)
    det = PageHinkley(delta=delta, threshold=threshold, alpha=alpha)
    got = [s.index for s in feed(det, x, batch=777)]
    assert got == river_page_hinkley(x, delta, threshold, alpha, 30)
    assert got  # the comparison is not vacuous


def test_adwin_exponential_histogram_invariants() -> None:
    x = np.random.default_rng(15).normal(size=3_001)
    det = ADWIN(max_buckets=3)
    det.reset(x)
    sizes = [1 << i for i in range(len(det._rows)) for _ in det._rows[i]][::-1]
    totals = [t for i in range(len(det._rows) - 1, -1, -1) for t in det._rows[i]]
    edges = np.cumsum([0, *sizes])
    assert edges[-1] == len(x) == det.width
    np.testing.assert_allclose(totals, [x[a:b].sum() for a, b in itertools.pairwise(edges)])
    assert all(len(row) <= 3 for row in det._rows)
    np.testing.assert_allclose(det._var, ((x - x.mean()) ** 2).sum(), rtol=1e-9)
    np.testing.assert_allclose(det.estimation, x.mean(), rtol=1e-12)
    # within-bucket variances (rows >= 1) are those of the segments they summarise
    flat_vars = [v for i in range(len(det._rows) - 1, 0, -1) for v in det._vars[i]]
    seg = [x[a:b] for a, b in itertools.pairwise(edges) if b - a > 1]
    np.testing.assert_allclose(flat_vars, [((s - s.mean()) ** 2).sum() for s in seg], rtol=1e-9)


# --- numerics cross-checked with scipy --------------------------------------------------------
# scipy is a test-only reference (the module is numpy-only); without it just these tests skip.


@pytest.fixture
def stats() -> ModuleType:
    return pytest.importorskip("scipy.stats")


def test_kolmogorov_sf_matches_scipy(stats: ModuleType) -> None:
    x = np.concatenate([[0.0, 1e-3], np.linspace(0.05, 5.0, 500)])
    np.testing.assert_allclose(kolmogorov_sf(x), stats.kstwobign.sf(x), rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("seed", range(6))
def test_ks_statistic_and_p_value_match_scipy(seed: int, stats: ModuleType) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=int(rng.integers(100, 1_500)))
    b = rng.normal(rng.uniform(0.0, 0.3), 1.0, size=int(rng.integers(100, 1_500)))
    if seed % 2:  # ties across and within samples
        a, b = np.round(a, 1), np.round(b, 1)
    ref = stats.ks_2samp(a, b, method="asymp")
    d = ks_statistic(a[:, None], b[:, None])[0]
    assert d == pytest.approx(ref.statistic, abs=1e-12)
    en = len(a) * len(b) / (len(a) + len(b))
    p = kolmogorov_sf(math.sqrt(en) * d)[0]
    # Our p-value is the limiting Kolmogorov distribution, which scipy exposes as kstwobign...
    assert p == pytest.approx(stats.kstwobign.sf(math.sqrt(en) * d), rel=1e-9, abs=1e-15)
    # ...while ks_2samp(method="asymp") uses the finite-n kstwo(round(en)): close, slightly smaller.
    assert p == pytest.approx(ref.pvalue, rel=0.5, abs=0.05)


def test_ks_per_feature_statistic_equals_one_column_at_a_time(stats: ModuleType) -> None:
    rng = np.random.default_rng(16)
    a, b = rng.normal(size=(400, 4)), rng.normal(0.2, 1.0, size=(300, 4))
    b[:, 2] = np.round(b[:, 2])
    a[:, 2] = np.round(a[:, 2])
    expected = [stats.ks_2samp(a[:, j], b[:, j]).statistic for j in range(4)]
    np.testing.assert_allclose(ks_statistic(a, b), expected, atol=1e-12)


def test_ks_signal_p_value_and_threshold_are_consistent(stats: ModuleType) -> None:
    rng = np.random.default_rng(17)
    ref = rng.normal(size=(1_000, 3))
    win = rng.normal(size=(500, 3))
    win[:, 1] += 0.5
    [sig] = KSDrift(reference=ref, alpha=0.01).update(win)
    en = 1_000 * 500 / 1_500
    assert sig.p_value == pytest.approx(3 * stats.kstwobign.sf(math.sqrt(en) * sig.statistic), rel=1e-8)
    assert stats.kstwobign.sf(math.sqrt(en) * sig.threshold) == pytest.approx(0.01 / 3, rel=1e-6)
    assert sig.feature == "feature_1"


def test_psi_matches_direct_formula() -> None:
    rng = np.random.default_rng(18)
    ref, win = rng.normal(size=2_000), rng.normal(0.5, 1.2, size=500)
    [sig] = PSIDrift(reference=ref, threshold=0.01).update(win)
    edges = np.concatenate([[-np.inf], np.quantile(ref, np.linspace(0, 1, 11)[1:-1]), [np.inf]])
    p = np.maximum(np.histogram(ref, edges)[0] / len(ref), 1e-4)
    q = np.maximum(np.histogram(win, edges)[0] / len(win), 1e-4)
    assert sig.statistic == pytest.approx(float(((q - p) * np.log(q / p)).sum()), rel=1e-12)


def test_psi_handles_discrete_reference_with_repeated_quantiles() -> None:
    rng = np.random.default_rng(19)
    ref = rng.integers(0, 3, size=1_000).astype(float)  # only 3 distinct values for 10 bins
    assert PSIDrift(reference=ref).update(rng.integers(0, 3, size=500).astype(float)) == []
    [sig] = PSIDrift(reference=ref).update(rng.integers(1, 4, size=500).astype(float))
    assert math.isfinite(sig.statistic) and sig.statistic > 0.2


# --- (e) bad parameters and bad data ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("ks", {"window": 5}),
        ("ks", {"window": 100.0}),
        ("ks", {"window": True}),
        ("ks", {"alpha": 0.0}),
        ("ks", {"alpha": 1.5}),
        ("ks", {"alpha": "0.01"}),
        ("psi", {"bins": 1}),
        ("psi", {"threshold": 0.0}),
        ("psi", {"threshold": float("nan")}),
        ("adwin", {"delta": 0.0}),
        ("adwin", {"delta": 1.0}),
        ("adwin", {"clock": 0}),
        ("adwin", {"max_buckets": 1}),
        ("adwin", {"min_window": 0}),
        ("page-hinkley", {"delta": -1.0}),
        ("page-hinkley", {"threshold": 0.0}),
        ("page-hinkley", {"alpha": 0.0}),
        ("page-hinkley", {"alpha": 1.01}),
        ("page-hinkley", {"min_instances": 0}),
        ("page-hinkley", {"direction": "sideways"}),
        ("ks", {"windw": 500}),
        ("adwin", {"window": 500}),
    ],
)
def test_bad_parameters_raise_parameter_error(name: str, params: dict) -> None:
    with pytest.raises(ParameterError):
        create_drift_detector(name, **params)


def test_unknown_detector_lists_choices() -> None:
    with pytest.raises(ParameterError, match="adwin, ks, page-hinkley, psi"):
        create_drift_detector("cusum")


@pytest.mark.parametrize("bad", [["a", "a"], ["a", ""], "ab", []])
def test_bad_feature_names(bad: object) -> None:
    with pytest.raises(ParameterError):
        create_drift_detector("ks", feature_names=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", [ADWIN, PageHinkley])
def test_sequential_detectors_refuse_feature_matrices(cls: type) -> None:
    with pytest.raises(ParameterError, match="1-D stream of anomaly scores"):
        cls().update(np.zeros((10, 3)))
    assert cls().update(np.zeros((10, 1))) == []  # a single column is a score stream


def test_registry_and_factory() -> None:
    assert set(DRIFT_DETECTORS) == set(ALL)
    for name in ALL:
        det = create_drift_detector(name, feature_names=["a", "b"])
        assert isinstance(det, DriftDetector) and det.name == name
    assert create_drift_detector("psi", feature_names=["a"], bins=5).bins == 5


@pytest.mark.parametrize("name", ALL)
def test_non_finite_values_are_refused_with_their_row(name: str) -> None:
    x = np.zeros(50)
    x[17] = np.nan
    with pytest.raises(DataError, match="row 17"):
        create_drift_detector(name).update(x)


def test_feature_count_mismatch_is_a_schema_error() -> None:
    det = KSDrift(reference=np.zeros((100, 3)))
    with pytest.raises(SchemaMismatchError):
        det.update(np.zeros((10, 4)))
    with pytest.raises(SchemaMismatchError):
        det.update(np.zeros(10))
    with pytest.raises(SchemaMismatchError):
        KSDrift(feature_names=["a", "b"]).update(np.zeros((10, 3)))


def test_empty_batches_are_a_no_op() -> None:
    for name in ALL:
        det = create_drift_detector(name)
        assert det.update(np.array([])) == []


def test_signal_to_dict_is_json_serialisable() -> None:
    sig = DriftSignal("ks", np.float64(0.3), np.float32(0.1), np.int64(12), np.float64(1e-9), "amount")
    d = sig.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d == {
        "detector": "ks",
        "statistic": 0.3,
        "threshold": pytest.approx(0.1),
        "index": 12,
        "p_value": 1e-9,
        "feature": "amount",
    }
    assert type(d["index"]) is int and type(d["statistic"]) is float
    assert DriftSignal("adwin", 1.0, 0.5, 3).to_dict()["p_value"] is None
