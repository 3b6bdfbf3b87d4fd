"""Streams that detect from the start (issue 21, part 2).

Online detectors are driven test-then-train, from their first meaningful record, with a
threshold that follows the stream causally; window (batch) detectors are fitted after a
warm-up sized to the detector and refitted as their data grows; after a drift with
``--retrain on-drift`` the refit uses the records since the change. The online detector here
(:class:`RunningZ`) is exact and tiny, so every expectation can be computed by hand; the
core's own online detectors are checked at the end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import PluginSite

import adcore
from adcore.domain.detector import Detector
from adcore.errors import DataError, ParameterError
from adcore.services.streaming.config import DEFAULT_STREAM_ALGORITHM, DEFAULT_WARMUP, StreamConfig
from adcore.services.streaming.threshold import FollowingThreshold
from adcore.services.streaming.warmup import growth_points, rows_needed

REPO = Path(__file__).resolve().parents[1]
FEATURES = ["a", "b", "c"]

RUNNING_Z = '''
import numpy as np


class RunningZ:
    """Largest |z| of a record against the running mean and std of every earlier record.

    Exact test-then-train: the running sums are cumulative sums over the rows in order, so
    scoring a batch equals scoring its rows one at a time, bit for bit.
    """

    min_records = 1

    def __init__(self, refuse_negative: bool = False):
        self.refuse_negative = refuse_negative

    def fit(self, X, y=None):
        self.n_, self.s_, self.q_ = 0, None, None
        return self.partial_fit(X)

    def _check(self, X):
        X = np.asarray(X, dtype=np.float64)
        if self.refuse_negative and (X[:, 0] < 0).any():
            raise ValueError("negative values in the first feature")
        if getattr(self, "s_", None) is None:
            self.n_ = 0
            self.s_ = np.zeros(X.shape[1])
            self.q_ = np.zeros(X.shape[1])
        return X

    def _running(self, X):
        s = np.cumsum(np.vstack([self.s_, X]), axis=0)
        q = np.cumsum(np.vstack([self.q_, X * X]), axis=0)
        n = self.n_ + np.arange(len(X) + 1)
        return s, q, n

    def partial_fit(self, X, y=None):
        X = self._check(X)
        s, q, n = self._running(X)
        self.s_, self.q_, self.n_ = s[-1], q[-1], int(n[-1])
        return self

    def _z(self, X, s, q, n):
        safe = np.maximum(n, 1)[:, None]
        mean = s / safe
        var = np.maximum(q / safe - mean * mean, 0.0)
        z = np.abs(X - mean) / np.sqrt(var + 1e-12)
        return np.where(n >= 2, z.max(axis=1), 0.0)

    def score_partial(self, X):
        X = self._check(X)
        s, q, n = self._running(X)
        scores = self._z(X, s[:-1], q[:-1], n[:-1])
        self.s_, self.q_, self.n_ = s[-1], q[-1], int(n[-1])
        return scores

    def decision_function(self, X):
        X = self._check(X)
        n = np.full(len(X), self.n_)
        return self._z(X, np.tile(self.s_, (len(X), 1)), np.tile(self.q_, (len(X), 1)), n)


class SlowStart(RunningZ):
    """Its scores mean something from the fourth record on."""

    min_records = 4


class Neighbours:
    """k-th neighbour distance: a fit needs more than n_neighbors rows."""

    def __init__(self, n_neighbors: int = 5):
        self.n_neighbors = n_neighbors

    def fit(self, X, y=None):
        if len(X) <= self.n_neighbors:
            raise ValueError(f"Expected n_neighbors < n_samples_fit, got n_neighbors = {self.n_neighbors}")
        self.X_ = np.asarray(X, dtype=np.float64)
        return self

    def decision_function(self, X):
        d = np.sqrt(((np.asarray(X)[:, None, :] - self.X_[None, :, :]) ** 2).sum(axis=2))
        return np.sort(d, axis=1)[:, self.n_neighbors - 1]
'''

PLUGIN = (
    RUNNING_Z
    + """

import adcore


@adcore.hookimpl
def register_detectors(register):
    register("runningz", RunningZ, summary="running z-score", tags=("online",))
    register("slowstart", SlowStart, summary="running z-score from record 4", tags=("online",))
    register("neighbours", Neighbours, summary="k-th neighbour distance")
"""
)

_namespace: dict[str, Any] = {}
exec(compile(RUNNING_Z, "running_z", "exec"), _namespace)  # the plugin's classes, in-process too
RunningZ = _namespace["RunningZ"]
SlowStart = _namespace["SlowStart"]
Neighbours = _namespace["Neighbours"]


def records(X: np.ndarray) -> list[dict[str, Any]]:
    names = FEATURES if X.shape[1] == 3 else [f"x{j}" for j in range(X.shape[1])]
    return [{"id": i, **{n: float(v) for n, v in zip(names, row, strict=True)}} for i, row in enumerate(X)]


def stream(X: np.ndarray, **options: Any) -> tuple[list[dict], list[Any], Any]:
    """Run ``X`` through ``adcore.open_stream``; the output records, the events and the stats."""
    out: list[dict] = []
    events: list[Any] = []
    with adcore.open_stream(records(X), out, subscribers=[events.append], **options) as s:
        stats = s.run()
    return out, events, stats


def of(events: list[Any], kind: str) -> list[Any]:
    return [e for e in events if e.type == kind]


def one_at_a_time(X: np.ndarray, factory: Any = RunningZ) -> np.ndarray:
    model = factory()
    return np.concatenate([model.score_partial(X[i : i + 1]) for i in range(len(X))])


# --------------------------------------------------------------------- online detectors
def test_an_online_detector_is_scored_from_the_first_record_without_refits():
    X = np.random.default_rng(0).normal(size=(300, 3))
    out, events, stats = stream(X, algo=RunningZ, window=100)
    assert [r["id"] for r in out] == list(range(300))
    assert not any(r.get("warmup") for r in out) and stats.warmup == 0
    assert all(isinstance(r["score"], float) and r["label"] in (0, 1) for r in out)
    assert stats.retrains == 0 and of(events, "model.retrained") == []
    # test-then-train: record i is scored by the model that learned records 0..i-1
    assert np.array_equal([r["score"] for r in out], one_at_a_time(X))


def test_min_records_sets_the_online_warmup():
    X = np.random.default_rng(1).normal(size=(50, 3))
    out, _, stats = stream(X, algo=SlowStart, window=20)
    assert [bool(r.get("warmup")) for r in out[:4]] == [True, True, True, False]
    assert stats.warmup == 3 and out[3]["score"] == one_at_a_time(X, SlowStart)[3]


@pytest.mark.parametrize("threshold", ["contamination", "fixed:2.5"])
def test_online_output_does_not_depend_on_the_batch_size(threshold):
    X = np.random.default_rng(2).normal(size=(700, 3))
    X[::37] += 6.0
    runs = [
        stream(X, algo=RunningZ, window=200, batch_size=size, threshold=threshold)[0] for size in (1, 7, 1000)
    ]
    assert runs[0] == runs[1] == runs[2]  # scores and labels, record by record
    assert sum(r["label"] for r in runs[0]) > 0


def test_online_labels_follow_the_stream_causally():
    rng = np.random.default_rng(3)
    scores = rng.exponential(size=2000)
    changed = scores.copy()
    changed[1200:] *= 50.0  # what comes later must not change an earlier label
    first = FollowingThreshold("contamination", 0.1, memory=500)
    second = FollowingThreshold("contamination", 0.1, memory=500)
    labels, thresholds = first.labels(scores)
    labels2, _ = second.labels(changed)
    assert np.array_equal(labels[:1200], labels2[:1200])
    assert np.array_equal(labels, scores > thresholds)
    # the threshold is the 90th percentile of the scores before each update point
    assert thresholds[1000] == pytest.approx(
        np.percentile(scores[1000 - 1000 % 64 - 500 : 1000 - 1000 % 64], 90)
    )
    assert 0.07 < labels[200:].mean() < 0.13
    # after a jump in scale the threshold follows within about one memory
    assert 0.05 < labels2[1800:].mean() < 0.15


@pytest.mark.parametrize("algo", ["core:loda", "core:rshash", "core:xstream", "core:hst"])
def test_a_calm_start_pages_nobody(algo):
    """No label before the threshold has enough scores; then about the contamination share."""
    X = np.random.default_rng(5).normal(size=(3000, 4))
    out, _, stats = stream(X, algo=algo, window=1000, seed=1, contamination=0.05)
    labels = np.array([r["label"] for r in out])
    assert stats.warmup == 0 and not labels[:100].any()  # 5 / 0.05 = 100 scores first
    assert 0.02 < labels.mean() < 0.08


def test_fixed_threshold_labels_an_online_stream_by_the_value():
    X = np.random.default_rng(4).normal(size=(200, 3))
    out, events, _ = stream(X, algo=RunningZ, window=50, threshold="fixed:2")
    assert all(r["label"] == int(r["score"] > 2) for r in out)
    assert {e.threshold for e in of(events, "anomaly.detected")} == {2.0}


def test_online_records_the_detector_refuses_are_dead_letters_and_the_rest_keep_their_order():
    X = np.abs(np.random.default_rng(5).normal(size=(120, 3)))
    bad = [30, 31, 77]
    X[bad, 0] = -1.0
    letters: list[dict] = []
    out, _, stats = stream(
        X, algo=RunningZ, params={"refuse_negative": True}, window=50, batch_size=16, dead_letter=letters
    )
    assert [r["id"] for r in out] == [i for i in range(120) if i not in bad]
    assert [d["line_number"] for d in letters] == [31, 32, 78] and stats.rejected == 3
    kept = np.delete(X, bad, axis=0)  # learned once each, in order: as if the bad ones never came
    assert np.array_equal([r["score"] for r in out], one_at_a_time(kept))


def test_retrain_never_freezes_an_online_detector_and_learn_needs_one():
    X = np.random.default_rng(6).normal(size=(300, 3))
    out, events, stats = stream(X, algo=RunningZ, window=100, retrain="never")
    assert stats.warmup == DEFAULT_WARMUP  # fitted as a window detector, then frozen
    assert [e.reason for e in of(events, "model.retrained")] == ["initial", "growing"]
    frozen = RunningZ().fit(X[:100])
    assert np.allclose([r["score"] for r in out[100:]], frozen.decision_function(X[100:]))
    with pytest.raises(ParameterError, match="--retrain learn needs an online detector"):
        stream(X, algo="core:hbos", retrain="learn")


def test_online_detector_with_on_drift_restarts_on_the_records_since_the_drift():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(3000, 3))
    X[1500:] += 4.0
    out, events, _ = stream(
        X,
        algo=RunningZ,
        window=500,
        retrain="on-drift",
        drift="ks",
        drift_params={"window": 200},
        batch_size=100,
    )
    drifts = [e for e in of(events, "drift.detected") if e.action == "retrain"]
    refits = of(events, "model.retrained")
    assert drifts and refits and refits[0].reason == "drift"
    assert 1500 <= drifts[0].offset < 1900
    assert refits[0].n_samples < 500  # the records since the drift, not a whole window
    assert len(out) == 3000


def test_the_online_wrapper_keeps_thresholds_and_labels():
    X = np.random.default_rng(8).normal(size=(300, 3))
    det = Detector(RunningZ)
    assert hasattr(det, "score_partial") and det.min_records == 1
    scores = det.score_partial(X)
    assert np.array_equal(scores, one_at_a_time(X))
    assert det.threshold_ == pytest.approx(np.percentile(scores, 90))
    assert det.predict(X).shape == (300,)
    more = det.score_partial(X[:10])
    assert np.array_equal(more, RunningZ().fit(X).score_partial(X[:10]))
    assert det.threshold_ == pytest.approx(np.percentile(scores, 90))  # kept while it learns
    det.partial_fit(X[:5])
    batch = Detector("core:hbos")
    assert not hasattr(batch, "score_partial") and not hasattr(batch, "partial_fit")
    with pytest.raises(DataError):
        Detector(RunningZ, refuse_negative=True).score_partial(-np.ones((3, 3)))


# -------------------------------------------------------------------- window detectors
def test_a_short_stream_is_scored_after_a_small_warmup():
    X = np.random.default_rng(9).normal(size=(300, 3))
    out, events, stats = stream(X, algo="core:hbos", window=1000)  # shorter than the window
    assert stats.warmup == DEFAULT_WARMUP and stats.scored == 300 - DEFAULT_WARMUP
    assert all(r["warmup"] for r in out[:DEFAULT_WARMUP])
    assert all(isinstance(r["score"], float) for r in out[DEFAULT_WARMUP:])
    fits = [(e.reason, e.offset, e.n_samples) for e in of(events, "model.retrained")]
    assert fits == [("initial", 50, 50), ("growing", 100, 100), ("growing", 200, 200)]


def test_the_warmup_is_sized_to_the_detector():
    X = np.random.default_rng(10).normal(size=(400, 3))
    _, events, stats = stream(X, algo=Neighbours, params={"n_neighbors": 80}, window=300)
    assert stats.warmup == 81  # n_neighbors + 1: the fewest rows its fit takes
    assert [(e.reason, e.n_samples) for e in of(events, "model.retrained")][:2] == [
        ("initial", 81),
        ("growing", 162),
    ]
    assert rows_needed({"member_params": {"pyod:knn": {"n_neighbors": 120}}}) == 121
    assert growth_points(50, 1000) == [100, 200, 400, 800, 1000] and growth_points(100, 100) == []


def test_a_given_warmup_wins():
    X = np.random.default_rng(11).normal(size=(400, 3))
    _, events, stats = stream(X, algo="core:hbos", window=300, warmup=120)
    assert stats.warmup == 120
    assert [(e.reason, e.n_samples) for e in of(events, "model.retrained")] == [
        ("initial", 120),
        ("growing", 240),
        ("growing", 300),
    ]
    out, _, stats = stream(X, algo=RunningZ, window=300, warmup=10)  # an online one learns them
    assert stats.warmup == 10 and out[10]["score"] == one_at_a_time(X)[10]


def test_growing_refits_do_not_depend_on_the_batch_size():
    X = np.random.default_rng(12).normal(size=(900, 3))
    runs = [stream(X, window=600, seed=1, batch_size=size)[0] for size in (13, 1000)]
    assert runs[0] == runs[1]


def auc(scores: np.ndarray, truth: np.ndarray) -> float:
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    pos = truth.astype(bool)
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def mean_shift_stream(seed: int = 13) -> tuple[np.ndarray, np.ndarray]:
    """6,000 records of 5 features, a 3-sigma mean shift at 3,000, 1% point anomalies."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(6000, 5))
    X[3000:] += 3.0
    truth = np.zeros(6000, dtype=int)
    spots = rng.choice(6000, size=60, replace=False)
    X[spots] += rng.choice([-1.0, 1.0], size=(60, 5)) * rng.uniform(3.0, 5.0, size=(60, 5))
    truth[spots] = 1
    return X, truth


def test_after_a_drift_the_refit_uses_the_records_since_the_change():
    X, truth = mean_shift_stream()
    out, events, _ = stream(
        X,
        algo="core:mad",
        window=2000,
        retrain="on-drift",
        drift="ks",
        drift_params={"window": 200},
        batch_size=100,
        seed=0,
    )
    refit = next(e for e in of(events, "model.retrained") if e.reason == "drift")
    assert 3000 <= refit.offset < 3400 and refit.n_samples < 2000
    after = of(events, "model.retrained")
    grown = [e for e in after if e.offset > refit.offset and e.reason == "growing"]
    assert grown and grown[-1].n_samples == 2000  # grown back to the window
    scores = np.array([r["score"] if r["score"] is not None else -np.inf for r in out])
    assert auc(scores[3000:5000], truth[3000:5000]) > 0.9


# --------------------------------------------------------------------------- defaults
def test_the_default_stream_algorithm_is_one_constant_the_docs_state():
    assert StreamConfig().validated().policy.mode == "every"
    docs = (REPO / "docs" / "streaming.md").read_text()
    assert f"| `--algo`, `-a` | `{DEFAULT_STREAM_ALGORITHM}` |" in docs
    with adcore.open_stream([], []) as s:
        assert s.service.model.algorithm == DEFAULT_STREAM_ALGORITHM


# ------------------------------------------------------------------------------- CLI
@pytest.fixture
def site(plugin_site: PluginSite) -> PluginSite:
    plugin_site.add("adcore-runz", {"runz": "runz_plugin"}, {"runz_plugin": PLUGIN})
    plugin_site.env["ADCORE_PLUGINS"] = "runz"
    return plugin_site


def test_cli_online_stream_scores_from_record_one_whatever_the_batch_size(site: PluginSite):
    X = np.random.default_rng(14).normal(size=(400, 3))
    text = "".join(json.dumps(r) + "\n" for r in records(X))
    outs = []
    for size in ("1", "1000"):
        proc = site.run(
            "stream", "--algo", "runz:runningz", "--batch-size", size, "--window", "100", stdin=text
        )
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout)
        assert proc.stderr.splitlines()[-1].startswith("stream: 400 records (0 warm-up), 0 malformed")
    assert outs[0] == outs[1]
    assert not any("warmup" in json.loads(line) for line in outs[0].splitlines())
    proc = site.run("stream", "--algo", "core:hbos", "--retrain", "learn", stdin=text)
    assert proc.returncode == 2 and "needs an online detector" in proc.stderr


# ----------------------------------------------------------- the core's online detectors
CORE_ONLINE = ("core:loda", "core:rshash", "core:xstream", "core:hst")


def _registered(name: str) -> bool:
    from adcore.plugins import get_host

    try:
        get_host().resolve("detector", name)
    except Exception:
        return False
    return True


@pytest.mark.parametrize("algo", CORE_ONLINE)
def test_core_online_detectors_stream_test_then_train(algo):
    if not _registered(algo):
        pytest.skip(f"{algo} is not registered")
    X, truth = mean_shift_stream(seed=15)
    X = X[:2500]
    runs = [stream(X, algo=algo, window=500, seed=3, batch_size=size) for size in (97, 1000)]
    (out, _, stats), (other, _, _) = runs
    assert out == other
    assert stats.warmup == 0 and stats.retrains == 0
    scores = np.array([r["score"] for r in out])
    assert auc(scores[100:], truth[100:2500]) > 0.8


def test_an_ensemble_of_online_detectors_streams():
    if not (_registered("core:loda") and _registered("core:rshash")):
        pytest.skip("the core's online detectors are not registered")
    X = np.random.default_rng(16).normal(size=(400, 3))
    out, _, stats = stream(X, algo="core:loda,core:rshash", window=200, seed=0)
    assert len(out) == 400 and stats.scored > 0


def test_a_stored_online_model_keeps_learning_unless_frozen(tmp_path: Path):
    if not _registered("core:loda"):
        pytest.skip("core:loda is not registered")
    store = str(tmp_path / "store")
    X = np.random.default_rng(17).normal(size=(600, 3))
    adcore.fit(X[:300], algo="core:loda", columns=FEATURES, name="live", store=store, seed=0)
    learning, _, stats = stream(X[300:], model="live", store=store, window=100)
    assert stats.warmup == 0 and stats.retrains == 0
    assert {r["model"] for r in learning} == {"live@1"}  # the stored version is not changed
    from adcore.services.models import load_model

    stored = load_model("live", store=store).detector
    expected = stored.score_partial(X[300:])  # test-then-train from the stored state
    assert np.allclose([r["score"] for r in learning], expected)
    frozen, _, _ = stream(X[300:], model="live", store=store, window=100, retrain="never")
    again = load_model("live", store=store).detector
    assert np.allclose([r["score"] for r in frozen], again.decision_function(X[300:]))


@pytest.mark.parametrize("algo", ["core:mad", RunningZ])
def test_drift_refits_do_not_depend_on_the_batch_size(algo):
    X, _ = mean_shift_stream(seed=18)
    runs = [
        stream(X[:4500], algo=algo, window=1000, retrain="on-drift", drift="ks", seed=0, batch_size=size)
        for size in (37, 1000)
    ]
    (out, events, _), (other, other_events, _) = runs
    assert out == other  # drift checks land on fixed record counts (every half KS window)
    shape = [
        (e.type, e.offset, getattr(e, "n_samples", None)) for e in events if e.type != "detection.completed"
    ]
    assert shape == [
        (e.type, e.offset, getattr(e, "n_samples", None))
        for e in other_events
        if e.type != "detection.completed"
    ]
    assert any(e.type == "drift.detected" for e in events)
