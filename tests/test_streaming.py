"""The streaming service in-process: windows, warm-up, retraining, drift wiring, records, delivery."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from adcore.domain.events import EventBus
from adcore.errors import DataError, ParameterError, SchemaMismatchError
from adcore.messaging import Message
from adcore.services.spec import create_detector
from adcore.services.streaming import (
    RetrainPolicy,
    SlidingWindow,
    StreamConfig,
    StreamingService,
    StreamModel,
    TumblingWindow,
)
from adcore.services.streaming.records import RecordDecoder

FEATURES = ["a", "b", "c"]


# ------------------------------------------------------------------------------ helpers
class ListSource:
    """A source over a list; ``log`` records poll/commit calls in order."""

    def __init__(self, items: list[Any], log: list[str] | None = None) -> None:
        self.items, self.pos, self.log = items, 0, log if log is not None else []

    def poll(self, max_records: int, timeout: float) -> list[Any] | None:
        if self.pos >= len(self.items):
            return None
        out = self.items[self.pos : self.pos + max_records]
        self.pos += len(out)
        return out

    def commit(self) -> None:
        self.log.append(f"commit@{self.pos}")

    def close(self) -> None:
        self.log.append("source.close")


class MemorySink:
    """Collects written values (and metadata); ``log`` records flushes."""

    def __init__(self, log: list[str] | None = None) -> None:
        self.values: list[bytes] = []
        self.metadata: list[Any] = []
        self.log = log if log is not None else []

    def write(self, value: bytes, metadata: Any = None) -> None:
        self.values.append(value)
        self.metadata.append(metadata)

    def flush(self) -> None:
        self.log.append(f"flush@{len(self.values)}")

    def close(self) -> None:
        self.log.append("sink.close")

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(v) for v in self.values]


class Collector:
    """A subscriber keeping every event it gets."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def __call__(self, event: Any) -> None:
        self.events.append(event)

    def of(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.type == kind]


def lines_of(X: np.ndarray, names: list[str] = FEATURES, **extra: Any) -> list[bytes]:
    return [
        json.dumps({"id": i, **{n: float(v) for n, v in zip(names, row, strict=True)}, **extra}).encode()
        for i, row in enumerate(X)
    ]


def run_stream(
    items: list[Any],
    *,
    algo: Any = "core:hbos",
    model: StreamModel | None = None,
    dead_letter: MemorySink | None = None,
    reports: list[str] | None = None,
    **config: Any,
) -> tuple[MemorySink, Collector, StreamingService]:
    from adcore.domain.events import Subscription

    sink = MemorySink()
    collector = Collector()
    cfg = StreamConfig(from_model=model is not None and model.fitted, **config).validated()
    stream_model = model or StreamModel.from_algorithm(create_detector(algo))
    service = StreamingService(
        ListSource(items),
        sink,
        stream_model,
        cfg,
        events=EventBus(subscribers=[Subscription("test", collector)]),
        dead_letter=dead_letter,
        report=(reports.append if reports is not None else lambda _m: None),
    )
    service.run()
    return sink, collector, service


def shifted_stream(n_before: int, n_after: int, shift: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_before + n_after, len(FEATURES)))
    X[n_before:] += shift
    return X


# ------------------------------------------------------------------------------ windows
def test_sliding_window_keeps_the_last_n_rows_in_order():
    window = SlidingWindow(5)
    rows = np.arange(24, dtype=float).reshape(12, 2)
    window.extend(rows[:3])
    assert window.contents().tolist() == rows[:3].tolist()
    window.extend(rows[3:7])  # wraps around the ring
    assert window.contents().tolist() == rows[2:7].tolist()
    window.extend(rows[7:12])  # a batch as large as the window
    assert window.contents().tolist() == rows[7:12].tolist()
    assert len(window) == 5 and window.n_seen == 12


def test_tumbling_window_offers_the_last_complete_block():
    window = TumblingWindow(4)
    rows = np.arange(11, dtype=float).reshape(11, 1)
    window.extend(rows[:3])
    assert window.contents().ravel().tolist() == [0, 1, 2]  # partial first block before one completes
    window.extend(rows[3:6])
    assert window.contents().ravel().tolist() == [0, 1, 2, 3]  # rows 4, 5 start the next block
    window.extend(rows[6:11])  # completes block 4..7, starts 8..
    assert window.contents().ravel().tolist() == [4, 5, 6, 7]
    assert window.n_seen == 11


# ------------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"window": 1}, "--window"),
        ({"window_type": "hopping"}, "--window-type"),
        ({"warmup": 200, "window": 100}, "--warmup"),
        ({"retrain": "sometimes"}, "--retrain"),
        ({"retrain": "every:0"}, "--retrain"),
        ({"retrain": "on-drift"}, "needs a drift detector"),
        ({"drift": "cusum"}, "--drift"),
        ({"drift": "adwin", "drift_on": "features"}, "score stream only"),
        ({"batch_size": 0}, "--batch-size"),
        ({"max_delay_ms": -1}, "--max-delay-ms"),
        ({"features": ["a", "a"]}, "distinct"),
        ({"save_retrained": "bad name"}, "invalid model name"),
    ],
)
def test_config_mistakes_are_parameter_errors(changes, needle):
    with pytest.raises(ParameterError, match=needle.replace("-", r"\-")):
        StreamConfig(**changes).validated()


def test_retrain_defaults_follow_where_the_model_comes_from():
    assert StreamConfig(window=300).validated().policy == RetrainPolicy("every", 300)
    assert StreamConfig(window=300, from_model=True).validated().policy == RetrainPolicy("never")
    assert str(RetrainPolicy.parse("every:25")) == "every:25"


def test_bad_drift_param_fails_before_reading():
    cfg = StreamConfig(drift="ks", drift_params={"windw": 50}).validated()
    with pytest.raises(ParameterError, match="windw"):
        StreamingService(
            ListSource([]), MemorySink(), StreamModel.from_algorithm(create_detector("hbos")), cfg
        )


# ---------------------------------------------------------------------- warm-up, retrain
def test_warmup_records_are_marked_then_scored():
    X = np.random.default_rng(1).normal(size=(60, 3))
    sink, events, _ = run_stream(lines_of(X), window=50, warmup=20, retrain="never")
    out = sink.records()
    assert [r["id"] for r in out] == list(range(60))
    assert all(r["warmup"] is True and r["score"] is None and r["label"] is None for r in out[:20])
    assert all("warmup" not in r and isinstance(r["score"], float) and r["label"] in (0, 1) for r in out[20:])
    fits = events.of("model.retrained")
    # the young model is refitted as its data grows (x2, then the full window), even with never
    assert [(e.reason, e.offset, e.n_samples) for e in fits] == [
        ("initial", 20, 20),
        ("growing", 40, 40),
        ("growing", 50, 50),
    ]


def test_periodic_retraining_is_exact_whatever_the_batch_size():
    X = np.random.default_rng(2).normal(size=(230, 3))
    items = lines_of(X)
    small, ev_small, _ = run_stream(items, window=40, retrain="every:30", batch_size=7)
    large, ev_large, _ = run_stream(items, window=40, retrain="every:30", batch_size=1000)
    assert small.values == large.values  # same scores: refits land on the same records
    fits = [(e.reason, e.offset, e.n_samples) for e in ev_small.of("model.retrained")]
    assert fits[0] == ("initial", 40, 40)
    assert fits[1:] == [("periodic", 40 + 30 * k, 40) for k in range(1, 7)]
    assert fits == [(e.reason, e.offset, e.n_samples) for e in ev_large.of("model.retrained")]


def test_tumbling_window_retrains_on_whole_blocks():
    X = np.random.default_rng(3).normal(size=(100, 3))
    _, events, service = run_stream(lines_of(X), window=25, window_type="tumbling", batch_size=10)
    fits = events.of("model.retrained")
    assert [(e.reason, e.offset) for e in fits] == [
        ("initial", 25),
        ("periodic", 50),
        ("periodic", 75),
        ("periodic", 100),
    ]
    assert all(e.n_samples == 25 for e in fits)
    assert service.window.contents().tolist() == X[75:100].tolist()


class NeedsVariance:
    """Mean-distance detector that, as many libraries do, refuses to fit a constant feature."""

    def fit(self, X, y=None):
        if (X.std(axis=0) == 0).any():
            raise ValueError("a feature has zero variance in the training data")
        self.mean_ = X.mean(axis=0)
        return self

    def decision_function(self, X):
        return np.abs(X - self.mean_).sum(axis=1)


class OutOfMemoryOnRefit(NeedsVariance):
    """Fails its second fit with an error that is nobody's input: a bug, or the machine's."""

    fits = 0

    def fit(self, X, y=None):
        type(self).fits += 1
        if type(self).fits == 2:
            raise RuntimeError("out of memory")
        return super().fit(X, y)


def _with_constant_block(seed: int) -> np.ndarray:
    """80 rows whose rows 20-39 are all the same: a window a refit cannot use."""
    X = np.random.default_rng(seed).normal(size=(80, 3))
    X[20:40] = 1.0
    return X


def test_failed_refit_publishes_refit_failed_and_keeps_the_previous_model():
    X = _with_constant_block(6)
    reports: list[str] = []
    sink, events, service = run_stream(
        lines_of(X), algo=NeedsVariance, window=20, retrain="every:20", reports=reports
    )
    assert len(sink.values) == 80  # every record scored: the first model went on scoring
    assert len(reports) == 1 and "periodic refit at record 40 failed" in reports[0]
    assert "zero variance" in reports[0] and "NeedsVariance" in reports[0]
    assert [(e.reason, e.offset) for e in events.of("model.retrained")] == [
        ("initial", 20),
        ("periodic", 60),
        ("periodic", 80),
    ]
    (failed,) = events.of("model.refit_failed")
    assert (failed.reason, failed.offset, failed.n_samples) == ("periodic", 40, 20)
    assert failed.error_type == "DataError" and "zero variance" in failed.error
    assert failed.algorithm == "NeedsVariance" and failed.model is None
    kinds = [e.type for e in events.events if e.type.startswith("model.")]
    assert kinds == ["model.retrained", "model.refit_failed", "model.retrained", "model.retrained"]
    assert service.stats.refit_failures == 1 and service.stats.retrains == 3


def test_a_refit_failing_with_an_untyped_error_is_a_bug_and_propagates():
    OutOfMemoryOnRefit.fits = 0
    X = np.random.default_rng(6).normal(size=(80, 3))
    with pytest.raises(RuntimeError, match="out of memory"):
        run_stream(lines_of(X), algo=OutOfMemoryOnRefit, window=20, retrain="every:20")


class PositiveOnly:
    """A log-scale detector: it cannot score a record with a value <= 0 (its data's fault)."""

    def fit(self, X, y=None):
        if (X <= 0).any():
            raise ValueError("log-scale scores need values > 0")
        self.mean_ = np.log(X).mean(axis=0)
        return self

    def decision_function(self, X):
        if (X <= 0).any():
            raise ValueError("log-scale scores need values > 0")
        return np.abs(np.log(X) - self.mean_).sum(axis=1)


def _positive_lines(n: int, bad: set[int], seed: int = 11) -> list[bytes]:
    X = np.exp(np.random.default_rng(seed).normal(size=(n, 3)))
    for i in bad:
        X[i, 1] = -1.0
    return lines_of(X)


@pytest.mark.parametrize("batch_size", [7, 1000])
def test_records_the_detector_refuses_go_to_the_dead_letters_and_the_stream_goes_on(batch_size):
    bad = {25, 26, 40, 71, 99}
    items = _positive_lines(100, bad)
    letters = MemorySink()
    reports: list[str] = []
    sink, events, service = run_stream(
        items, algo=PositiveOnly, window=20, retrain="never", batch_size=batch_size,
        dead_letter=letters, reports=reports,
    )  # fmt: skip
    assert reports == []
    out = sink.records()
    assert [r["id"] for r in out] == [i for i in range(100) if i not in bad]  # the rest, in order
    assert all(isinstance(r["score"], float) for r in out[20:])
    rejected = letters.records()
    assert [d["line_number"] for d in rejected] == [i + 1 for i in sorted(bad)]
    reason = "PositiveOnly rejected the data (1 row): log-scale scores need values > 0"
    assert all(d["error"] == reason for d in rejected)
    assert json.loads(rejected[0]["line"])["id"] == 25  # the line as it came
    assert service.stats.rejected == 5 and service.stats.records == 95 and service.stats.malformed == 0
    completed = events.of("detection.completed")
    assert sum(e.rejected for e in completed) == 5 and sum(e.records for e in completed) == 95
    assert completed[-1].last_offset == 94  # offsets count output records: no gaps
    anomalies = events.of("anomaly.detected")
    assert all(out[e.offset]["id"] == e.record_id for e in anomalies)


def test_refused_records_keep_transport_metadata_aligned():
    lines = _positive_lines(40, {30, 33})
    items = [Message(line, {"partition": 0, "offset": 500 + i}) for i, line in enumerate(lines)]
    letters = MemorySink()
    sink, _, _ = run_stream(items, algo=PositiveOnly, window=20, batch_size=16, dead_letter=letters)
    out = sink.records()
    assert [r["_meta"]["offset"] for r in out] == [500 + i for i in range(40) if i not in (30, 33)]
    assert [m["offset"] for m in sink.metadata] == [r["_meta"]["offset"] for r in out]  # to write(), too
    assert [d["_meta"]["offset"] for d in letters.records()] == [530, 533]


def test_refused_records_without_a_dead_letter_sink_are_reported_one_line_each():
    reports: list[str] = []
    sink, _, _ = run_stream(_positive_lines(30, {24}), algo=PositiveOnly, window=20, reports=reports)
    assert len(sink.values) == 29
    assert reports == [
        "skipped line 25: PositiveOnly rejected the data (1 row): log-scale scores need values > 0"
    ]


class NeedsNeighbours:
    """Distance to the k-th nearest training row; like PyOD's knn, it needs more than k rows."""

    def __init__(self, k: int = 5):
        self.k = k

    def fit(self, X, y=None):
        if self.k >= len(X):
            raise ValueError(f"Expected k < n_samples, but k = {self.k}, n_samples = {len(X)}")
        self.X_ = X
        return self

    def decision_function(self, X):
        d = np.sqrt(((X[:, None, :] - self.X_[None, :, :]) ** 2).sum(axis=2))
        return np.sort(d, axis=1)[:, self.k]


def test_a_first_fit_that_cannot_work_fails_before_any_warmup_record_is_written():
    from adcore.services.spec import detector_spec

    detector = detector_spec(NeedsNeighbours, {"k": 50}, seed=0).build()
    sink = MemorySink()
    cfg = StreamConfig(window=40, batch_size=8).validated()  # warm-up spans five batches
    service = StreamingService(
        ListSource(lines_of(np.random.default_rng(1).normal(size=(60, 3)))), sink,
        StreamModel.from_algorithm(detector), cfg,
    )  # fmt: skip
    with pytest.raises(ParameterError) as caught:
        service.run()
    message = str(caught.value)
    assert "\n" not in message and message.startswith(
        "NeedsNeighbours cannot be fitted on a warm-up of 40 records"
    )
    assert "k=50" in message and "Expected k < n_samples" in message
    assert caught.value.parameter == "k" and caught.value.algorithm == "NeedsNeighbours"
    assert sink.values == []  # nothing misleading was written


def test_a_first_fit_refused_by_the_data_itself_ends_the_stream_with_that_error():
    X = np.random.default_rng(2).normal(size=(60, 3))
    X[:, 2] = 4.0  # constant: only the real window shows it
    with pytest.raises(DataError, match=r"NeedsVariance rejected the data .*zero variance"):
        run_stream(lines_of(X), algo=NeedsVariance, window=20, batch_size=8)


# ------------------------------------------------------------------------ drift wiring
DRIFT_CASES = [
    ("ks", "scores", {"window": 300}),
    ("psi", "scores", {"window": 300}),
    ("adwin", "scores", {}),
    ("page-hinkley", "scores", {}),
    ("ks", "features", {"window": 300}),
    ("psi", "features", {"window": 300}),
]


@pytest.mark.parametrize(("detector", "on", "params"), DRIFT_CASES)
def test_drift_detector_finds_a_planted_shift_and_retrains(detector, on, params):
    X = shifted_stream(1500, 1500, shift=3.0)
    _, events, _ = run_stream(
        lines_of(X),
        algo="core:mad",
        window=400,
        retrain="on-drift",
        drift=detector,
        drift_on=on,
        drift_params=params,
        batch_size=100,
    )
    drifts = events.of("drift.detected")
    assert drifts, f"{detector} on {on} missed a 3-sigma shift"
    first = drifts[0]
    assert first.detector == detector and first.on == on and first.action == "retrain"
    assert 1500 <= first.offset < 2300, first.offset
    if on == "features":
        assert first.feature in FEATURES
    refits = [e for e in events.of("model.retrained") if e.reason == "drift"]
    assert refits and refits[0].offset >= first.offset
    assert refits[0].timestamp >= first.timestamp


@pytest.mark.parametrize(("detector", "on", "params"), DRIFT_CASES)
def test_drift_detector_is_quiet_on_stationary_data(detector, on, params):
    X = shifted_stream(3000, 0, shift=0.0, seed=5)
    _, events, _ = run_stream(
        lines_of(X),
        algo="core:mad",
        window=400,
        retrain="on-drift",
        drift=detector,
        drift_on=on,
        drift_params=params,
        batch_size=100,
    )
    assert events.of("drift.detected") == []
    # fitted after a 50-record warm-up, then grown with the data: 100, 200, the window (400)
    assert [e.reason for e in events.of("model.retrained")] == ["initial", "growing", "growing", "growing"]


def test_drift_without_on_drift_policy_only_reports():
    X = shifted_stream(800, 800, shift=4.0)
    _, events, _ = run_stream(
        lines_of(X), window=300, retrain="never", drift="ks", drift_params={"window": 200}, batch_size=50
    )
    assert events.of("drift.detected") and all(e.action == "none" for e in events.of("drift.detected"))
    assert [e.reason for e in events.of("model.retrained")] == ["initial", "growing", "growing", "growing"]


# ------------------------------------------------------------------------ registry model
@pytest.fixture
def stored_model(tmp_path):
    import adcore

    store = str(tmp_path / "store")
    X = np.random.default_rng(7).normal(size=(300, 3))
    adcore.fit(X, algo="core:hbos", columns=FEATURES, name="payments", store=store)
    return store


def test_stream_starts_from_a_registry_model_without_warmup(stored_model):
    from adcore.services.registry import open_store

    model = StreamModel.from_registry("payments", store=stored_model)
    X = np.random.default_rng(8).normal(size=(120, 3))
    sink, events, _ = run_stream(lines_of(X), model=model, window=50, retrain="every:50")
    out = sink.records()
    assert len(out) == 120 and not any(r.get("warmup") for r in out)
    assert {r["model"] for r in out[:50]} == {"payments@1"}
    assert {r["model"] for r in out[50:100]} == {"payments@1+r1"}
    assert {r["model"] for r in out[100:]} == {"payments@1+r2"}
    assert [e.saved for e in events.of("model.retrained")] == [False, False]
    store = open_store(stored_model)
    assert [r.version for r in store.list("payments")] == [1]  # never overwritten
    store.close()


def test_save_retrained_writes_new_versions_under_another_name(stored_model):
    from adcore.services.registry import open_store

    model = StreamModel.from_registry("payments@1", store=stored_model, save_as="payments-live")
    X = np.random.default_rng(9).normal(size=(100, 3))
    sink, events, _ = run_stream(lines_of(X), model=model, window=40, retrain="every:40")
    assert [e.model for e in events.of("model.retrained")] == ["payments-live@1", "payments-live@2"]
    saved = events.of("model.saved")
    assert [(e.model, e.name, e.version, e.n_samples) for e in saved] == [
        ("payments-live@1", "payments-live", 1, 40),
        ("payments-live@2", "payments-live", 2, 40),
    ]
    assert saved[0].sha256 and saved[0].algorithm == "core:hbos"
    kinds = [e.type for e in events.events if e.type.startswith("model.")]
    assert kinds == ["model.retrained", "model.saved"] * 2  # each save right after its fit
    assert sink.records()[-1]["model"] == "payments-live@2"
    store = open_store(stored_model)
    assert [r.version for r in store.list("payments-live")] == [1, 2]
    assert store.get("payments-live", 2).feature_names == FEATURES
    assert [r.version for r in store.list("payments")] == [1]
    store.close()
    # a saved refit can be explained later: it kept its training medians
    from adcore.services.models import load_model

    saved = load_model("payments-live@2", store=stored_model)
    assert saved.detector.feature_medians_.shape == (3,)


def test_unsaved_refits_skip_the_explanation_baseline():
    X = np.random.default_rng(10).normal(size=(100, 3))
    _, _, service = run_stream(lines_of(X), window=40, retrain="every:40")
    detector = service.model.detector
    assert service.stats.retrains == 2 and not hasattr(detector, "feature_medians_")
    with pytest.raises(ParameterError, match="reference="):
        from adcore.services.explain import explain

        explain(detector, X[:2])


def test_registry_model_features_are_used_and_checked(stored_model):
    model = StreamModel.from_registry("payments", store=stored_model)
    # fields in another order, plus a numeric field that is not a feature: picked by name
    items = [json.dumps({"zz": 5.0, "c": 0.1, "b": 0.2, "a": 0.3}).encode()] * 3
    sink, _, _ = run_stream(items, model=model, window=10)
    assert [r["zz"] for r in sink.records()] == [5.0, 5.0, 5.0]
    with pytest.raises(SchemaMismatchError, match="--features"):
        cfg = StreamConfig(features=["a", "b"], from_model=True).validated()
        StreamingService(ListSource([]), MemorySink(), model, cfg)


# ----------------------------------------------------------------------- records, order
def test_malformed_lines_are_reported_and_skipped_in_order():
    good = lines_of(np.random.default_rng(4).normal(size=(30, 3)))
    bad = [
        b"not json",
        b'{"id": "m", "a": 1.0, "b": 2.0}',  # missing feature c
        b'{"id": "s", "a": "1.5", "b": 2.0, "c": 3.0}',  # string value
        b'{"id": "n", "a": NaN, "b": 2.0, "c": 3.0}',  # NaN is not JSON
        b'{"id": "i", "a": 1e999, "b": 2.0, "c": 3.0}',  # overflows to infinity
        b'{"id": "t", "a": true, "b": 2.0, "c": 3.0}',  # bool
        b'{"id": "z", "a": null, "b": 2.0, "c": 3.0}',
        b"[1.0, 2.0]",  # wrong length
        b'"just a string"',
        b"",  # blank: silently skipped
    ]
    items = good[:10] + bad + good[10:]
    reports: list[str] = []
    sink, _, service = run_stream(items, window=5, batch_size=8, reports=reports)
    assert [r["id"] for r in sink.records()] == list(range(30))
    assert len(reports) == 9
    numbers = [int(r.split()[2].rstrip(":")) for r in reports]
    assert numbers == list(range(11, 20))
    joined = "\n".join(reports)
    for needle in (
        "not JSON",
        "missing feature 'c'",
        "'a' is not a finite number: \"1.5\"",
        "NaN",
        "true",
        "null",
        "array has 2 values, expected 3",
        "object or array",
    ):
        assert needle in joined, needle
    assert service.stats.malformed == 9 and service.stats.records == 30


def test_dead_letter_sink_receives_line_error_and_number():
    items = [b'{"a": 1, "b": 2, "c": 3}', b"{oops", b'{"a": 1, "b": 2, "c": 3}']
    letters = MemorySink()
    reports: list[str] = []
    sink, _, _ = run_stream(items, window=2, dead_letter=letters, reports=reports)
    assert reports == [] and len(sink.values) == 2
    (letter,) = letters.records()
    assert letter["line"] == "{oops" and letter["line_number"] == 2 and letter["error"].startswith("not JSON")


def test_features_are_inferred_and_passthrough_fields_kept():
    items = [
        json.dumps({"id": 7, "user": "u1", "a": 1.0, "b": 2, "tags": ["x"], "nested": {"k": 1}}).encode(),
        json.dumps({"id": 8, "user": "u2", "a": 1.5, "b": 3, "tags": [], "nested": {"k": 2}}).encode(),
        json.dumps({"id": 9, "a": 0.5, "b": 1, "note": "fields may vary"}).encode(),
    ]
    sink, _, service = run_stream(items, window=2)
    assert service.decoder.features == ["a", "b"]  # numeric, and not 'id'
    out = sink.records()
    assert out[0] == {
        "id": 7,
        "user": "u1",
        "tags": ["x"],
        "nested": {"k": 1},
        "score": None,
        "label": None,
        "warmup": True,
    }
    assert out[2]["note"] == "fields may vary" and "a" not in out[2] and isinstance(out[2]["score"], float)
    kept, _, _ = run_stream(items, window=2, keep_features=True)
    assert kept.records()[2]["a"] == 0.5


def test_array_records_and_explicit_features():
    decoder = RecordDecoder(["p", "q"])
    batch = decoder.decode([b"[1, 2]", b'{"q": 4, "p": 3, "r": "x"}', b"[1, 2, 3]"])
    assert batch.X.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert [m.line_number for m in batch.malformed] == [3]
    inferred = RecordDecoder(None)
    assert inferred.decode([b"[0.5, 1.5, 2.5]"]).X.shape == (1, 3) and inferred.features == ["x0", "x1", "x2"]


def test_metadata_flows_to_output_and_commit_follows_flush():
    log: list[str] = []
    items = [
        Message(
            json.dumps({"a": float(i), "b": 1.0}).encode(), {"topic": "t", "partition": 0, "offset": 100 + i}
        )
        for i in range(6)
    ]
    sink = MemorySink(log)
    cfg = StreamConfig(window=3, batch_size=4).validated()
    service = StreamingService(
        ListSource(items, log), sink, StreamModel.from_algorithm(create_detector("hbos")), cfg
    )
    service.run()
    out = sink.records()
    assert [r["_meta"]["offset"] for r in out] == list(range(100, 106))
    assert sink.metadata[0] == {"topic": "t", "partition": 0, "offset": 100}
    assert log == ["flush@4", "commit@4", "flush@6", "commit@6"]


def test_plain_iterables_and_streams_without_a_descriptor_are_sources():
    import io

    from adcore.builtin.messaging import LineSource
    from adcore.messaging import as_source

    lines = [json.dumps({"a": float(i), "b": 1.0}).encode() for i in range(12)]
    for source in (as_source(iter(lines)), LineSource(io.BytesIO(b"\n".join(lines) + b"\n"), "memory")):
        sink = MemorySink()
        cfg = StreamConfig(window=4, batch_size=5).validated()
        StreamingService(source, sink, StreamModel.from_algorithm(create_detector("hbos")), cfg).run()
        assert len(sink.values) == 12
    assert as_source(iter([])).poll(10, 0.5) is None


def test_a_number_beyond_float_range_is_named_not_called_nan():
    from adcore.services.streaming.records import RecordDecoder

    decoder = RecordDecoder(["a", "b"])
    huge = b'{"a": 1' + b"0" * 400 + b', "b": 2}'
    batch = decoder.decode([b'{"a": 1, "b": 2}', huge, b'{"a": NaN, "b": 2}', b'{"a": true, "b": 2}'])
    assert batch.line_numbers == [1]
    errors = {m.line_number: m.error for m in batch.malformed}
    assert errors[2].startswith("unsupported number") and "NaN" not in errors[2]
    assert errors[3] == "not JSON: NaN and Infinity are not JSON numbers"
    assert errors[4] == "feature 'a' is not a finite number: true"


# ------------------------------------------------------------- typed fast path (msgspec)
def _mixed_shape_stream() -> list[bytes]:
    """Records of one shape, then a new pass-through key, bad lines, and reordered keys."""
    rng = np.random.default_rng(5)
    lines: list[bytes] = []
    for i in range(900):
        a, b, c = (float(v) for v in rng.normal(size=3))
        record: dict[str, Any] = {"id": i, "user": f"u{i % 7}", "a": a, "b": b, "c": c}
        if i >= 400:
            record["region"] = {"name": "é-north", "codes": [1, 2, 3]}  # a new key appears
        if i % 97 == 0:
            record["a"] = [True, "1.5", None][i % 3]  # not a finite number
        if i % 131 == 0:
            record = dict(reversed(list(record.items())))  # same keys, another order
        if i == 300:
            record["c"] = 7  # an integer feature
        lines.append(json.dumps(record, ensure_ascii=False).encode())
        if i % 211 == 0:
            lines.append(b"{not json")
            lines.append(b"")
    return lines


def _run_with_typed_path(monkeypatch: pytest.MonkeyPatch, enabled: bool, **config: Any):
    from adcore.services.streaming import typed

    if not enabled:
        monkeypatch.setattr(typed.TypedLayout, "for_record", classmethod(lambda cls, record, features: None))
    reports: list[str] = []
    sink, collector, service = run_stream(
        _mixed_shape_stream(), window=200, batch_size=64, reports=reports, **config
    )
    monkeypatch.undo()
    return sink, collector, service, reports


@pytest.mark.parametrize("keep_features", [False, True])
def test_typed_decoding_changes_speed_not_output(monkeypatch, keep_features):
    typed_run = _run_with_typed_path(monkeypatch, True, keep_features=keep_features)
    dict_run = _run_with_typed_path(monkeypatch, False, keep_features=keep_features)
    assert typed_run[2].decoder._layout is not None  # the typed path was really used
    assert dict_run[2].decoder._layout is None
    typed_out, dict_out = typed_run[0].records(), dict_run[0].records()
    assert typed_out == dict_out  # same records, values, scores and labels (key order aside)
    assert typed_run[3] == dict_run[3]  # the same malformed lines reported, same words
    assert typed_run[2].stats.to_dict() | {"seconds": 0} == dict_run[2].stats.to_dict() | {"seconds": 0}
    later = next(r for r in typed_out if r["id"] == 450)
    assert later["region"] == {"name": "é-north", "codes": [1, 2, 3]}  # passed through intact
    assert [e.record_id for e in typed_run[1].of("anomaly.detected")] == [
        e.record_id for e in dict_run[1].of("anomaly.detected")
    ]


def test_typed_layout_follows_a_change_of_shape():
    decoder = RecordDecoder(["a", "b"])
    first = [json.dumps({"id": i, "a": 1.0, "b": 2.0}).encode() for i in range(3)]
    decoder.decode(first)  # the dict path; learns the shape
    assert type(decoder.decode(first).records[0]).__name__ == "StreamRecord"
    changed = [json.dumps({"id": i, "a": 1.0, "b": 2.0, "zone": "x"}).encode() for i in range(3)]
    for _ in range(decoder.MAX_LAYOUT_MISSES):
        batch = decoder.decode(changed)
        assert [r.get("zone") for r in batch.records] == ["x", "x", "x"]
    batch = decoder.decode(changed)  # the layout was rebuilt for the new shape
    assert type(batch.records[0]).__name__ == "StreamRecord"
    assert batch.records[0].get("zone") == "x"
