"""Events: schema, delivery through monitors / sinks / subscribers, and the subscriber hook."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from adcore.domain.events import (
    EVENT_TYPES,
    AnomalyDetected,
    BenchCompleted,
    DetectionCompleted,
    DriftDetected,
    EventBus,
    JobFailed,
    JobFinished,
    JobQueued,
    JobStarted,
    ModelRetrained,
    ModelSaved,
    RefitFailed,
    Subscription,
    event_from_dict,
)
from adcore.errors import ParameterError
from adcore.hookspecs import hookimpl
from adcore.plugins import PluginHost
from adcore.services.events import load_subscribers, publish_to_subscribers

SAMPLES = [
    DetectionCompleted(
        stream="s1", records=10, scored=8, warmup=2, anomalies=1, malformed=0, first_offset=0, last_offset=9,
        model=None, threshold=1.5, duration_ms=0.4,
    ),
    AnomalyDetected(
        stream="s1", offset=3, line_number=4, score=9.5, threshold=1.5, model="payments@2", record_id="tx-9",
        metadata={"topic": "payments", "partition": 1, "offset": 42, "key": "c-1"},
    ),
    DriftDetected(
        stream="s1", detector="ks", on="scores", offset=700, statistic=0.3, threshold=0.1, p_value=1e-9,
        action="retrain",
    ),
    ModelRetrained(
        stream="s1", reason="drift", offset=700, n_samples=500, algorithm="core:hbos", threshold=2.0,
        previous_threshold=1.5, model=None, previous_model=None, saved=False, fit_ms=3.2, seed=7,
    ),
    RefitFailed(
        stream="s1", reason="periodic", offset=900, n_samples=100, algorithm="pyod:knn", model="payments@2",
        error="pyod:knn rejected the data (100 rows): Expected n_neighbors < n_samples_fit",
        error_type="DataError", parameter=None,
    ),
    JobQueued(
        stream="job:ab12", job="ab12", kind="score", priority="high", input="/data/in.csv", output="/o.csv",
    ),
    JobStarted(stream="job:ab12", job="ab12", kind="score", priority="high", worker="w1", attempt=2),
    JobFinished(
        stream="job:ab12", job="ab12", kind="score", priority="high", seconds=1.5, output="/data/o.csv",
        summary={"n_rows": 100, "n_anomalies": 3},
    ),
    JobFailed(
        stream="job:ab12", job="ab12", kind="fit", priority="low", seconds=0.1,
        error="/data/in.csv: no such file", error_type="DataError",
    ),
    ModelSaved(
        stream="serve:fit", model="payments@3", name="payments", version=3, algorithm="core:hbos",
        threshold=2.5, seed=11, n_samples=400, n_features=3, sha256="ab" * 32,
        params={"n_bins": 10, "contamination": 0.1}, metrics={"n_anomalies": 40, "score_q0.5": 1.25},
        store="/data/models",
    ),
    BenchCompleted(
        records=[{"dataset": "cardio", "algorithm": "core:hbos", "roc_auc": 0.83, "average_precision": 0.4}],
        summary=[{"algorithm": "core:hbos", "mean_roc_auc": 0.83}], artifacts=["bench.json"], seed=0,
    ),
]  # fmt: skip


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.type)
def test_event_schema_is_plain_json_with_id_type_timestamp(event):
    data = event.to_dict()
    assert list(data)[:3] == ["id", "type", "timestamp"]
    assert uuid.UUID(data["id"]).version == 4
    assert data["type"] == event.type and data["type"] in EVENT_TYPES
    assert data["timestamp"].endswith("Z")
    stamp = datetime.fromisoformat(data["timestamp"].replace("Z", "+00:00"))
    assert stamp.utcoffset() == timedelta(0)
    assert json.loads(json.dumps(data)) == data  # no custom encoder needed
    assert event_from_dict(json.loads(json.dumps(data))) == event


def test_every_type_has_a_sample_here():
    assert sorted(e.type for e in SAMPLES) == sorted(EVENT_TYPES)


def test_model_saved_describes_a_stored_version(tmp_path: Path):
    import adcore
    from adcore.services.registry import open_store

    store = str(tmp_path / "store")
    X = np.random.default_rng(0).normal(size=(50, 2))
    adcore.fit(X, algo="core:hbos", name="payments", store=store, seed=4)
    opened = open_store(store)
    record = opened.get("payments", 1)
    opened.close()
    event = ModelSaved.from_record(record, stream="cli:fit")
    assert (event.model, event.version, event.seed) == ("payments@1", 1, 4)
    assert (event.n_samples, event.n_features) == (50, 2)
    assert event.sha256 == record.sha256 and event.threshold == pytest.approx(record.threshold)


def test_every_event_gets_its_own_id():
    assert len({DriftDetected(detector="ks", on="scores", offset=1, statistic=1.0, threshold=0.5).id
                for _ in range(50)}) == 50  # fmt: skip


def test_unknown_event_type_is_refused():
    with pytest.raises(ParameterError, match="unknown event type"):
        event_from_dict({"type": "model.deleted"})


class FileishSink:
    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.flushes = 0

    def write(self, value, metadata=None):
        self.lines.append(value)

    def flush(self):
        self.flushes += 1

    def close(self):
        pass


def test_bus_routes_by_type_and_isolates_broken_listeners():
    got: list[str] = []
    errors: list[str] = []

    def broken(event):
        raise RuntimeError("boom")

    class Monitor:
        def __init__(self):
            self.recorded = []

        def record(self, event):
            self.recorded.append(event.type)

    monitor = Monitor()
    sink = FileishSink()
    bus = EventBus(
        monitors=[monitor],
        sinks=[sink],
        subscribers=[
            Subscription("drift-only", lambda e: got.append(e.type), frozenset({"drift.detected"})),
            Subscription("broken", broken),
        ],
        on_error=errors.append,
    )
    for event in SAMPLES + SAMPLES:
        bus.publish(event)
    bus.flush()
    assert got == ["drift.detected", "drift.detected"]
    assert monitor.recorded == [e.type for e in SAMPLES + SAMPLES]
    assert [json.loads(line)["type"] for line in sink.lines] == [e.type for e in SAMPLES + SAMPLES]
    assert sink.flushes == 1
    assert len(errors) == 1 and "subscriber broken" in errors[0] and "boom" in errors[0]


def test_nobody_listening_means_nothing_is_wanted():
    only_drift = EventBus(subscribers=[Subscription("d", print, frozenset({"drift.detected"}))])
    assert only_drift.wants("drift.detected") and not only_drift.wants("anomaly.detected")
    assert not EventBus().wants("detection.completed")


# ------------------------------------------------------------------ the subscriber hook
class InlinePlugin:
    """A plugin object registering two subscribers, one of them for drift events only."""

    def __init__(self) -> None:
        self.all_events: list[str] = []
        self.drifts: list[dict] = []

    @hookimpl
    def register_event_subscribers(self, register):
        register("everything", lambda e: self.all_events.append(e.type), summary="all events")
        register("drifts", lambda e: self.drifts.append(e.to_dict()), types=("drift.detected",))


def test_subscribers_are_collected_from_plugins_with_their_types():
    host = PluginHost(autoload=False).load()
    plugin = InlinePlugin()
    host.add_plugin(plugin, "inline")
    subs = {s.name: s for s in load_subscribers(host=host)}
    assert set(subs) == {"inline:everything", "inline:drifts"}
    assert subs["inline:everything"].types is None
    assert subs["inline:drifts"].types == frozenset({"drift.detected"})


def test_one_shot_commands_publish_to_the_plugins_subscribers():
    host = PluginHost(autoload=False).load()
    plugin = InlinePlugin()
    host.add_plugin(plugin, "inline")

    class Broken:
        @hookimpl
        def register_event_subscribers(self, register):
            register("down", lambda e: 1 / 0)

    host.add_plugin(Broken(), "broken")
    errors: list[str] = []
    publish_to_subscribers([SAMPLES[-2], SAMPLES[2]], host=host, on_error=errors.append)
    assert plugin.all_events == ["model.saved", "drift.detected"]
    assert [d["type"] for d in plugin.drifts] == ["drift.detected"]
    assert len(errors) == 1 and "subscriber broken:down failed on model.saved: ZeroDivisionError" in errors[0]


def test_subscriber_with_unknown_types_is_left_out_and_reported():
    class Typo:
        @hookimpl
        def register_event_subscribers(self, register):
            register("oops", print, types=("drift.detcted",))

    host = PluginHost(autoload=False).load()
    host.add_plugin(Typo(), "typo")
    errors: list[str] = []
    assert load_subscribers(host=host, on_error=errors.append) == []
    assert "drift.detcted" in errors[0]


def test_hook_register_event_subscribers(plugin_site, tmp_path: Path):
    """A real installed plugin subscribes and receives the events of an ``adcore stream`` run."""
    log = tmp_path / "received.jsonl"
    plugin_site.add(
        "adcore-audit",
        {"audit": "adcore_audit"},
        {
            "adcore_audit": f"""
            import json
            import adcore

            def _append(event):
                with open({str(log)!r}, "a") as f:
                    f.write(json.dumps(event.to_dict()) + "\\n")

            @adcore.hookimpl
            def register_event_subscribers(register):
                register("audit", _append, types=("drift.detected", "model.retrained"))
            """
        },
    )
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1600, 2))
    X[800:] += 4.0  # a planted shift
    stdin = "".join(json.dumps({"id": i, "a": float(a), "b": float(b)}) + "\n" for i, (a, b) in enumerate(X))
    proc = plugin_site.run(
        "stream", "--algo", "core:hbos", "--window", "200", "--drift", "ks", "--drift-param", "window=200",
        "--retrain", "on-drift",
        "--batch-size", "100", "-q", stdin=stdin,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 1600
    received = [json.loads(line) for line in log.read_text().splitlines()]
    kinds = [e["type"] for e in received]
    assert kinds[0] == "model.retrained" and received[0]["reason"] == "initial"
    assert "drift.detected" in kinds
    drift = received[kinds.index("drift.detected")]
    assert drift["offset"] >= 800 and drift["action"] == "retrain"
    assert any(e["type"] == "model.retrained" and e["reason"] == "drift" for e in received)
    assert len({e["stream"] for e in received}) == 1


def test_adcore_fit_publishes_model_saved_to_subscribers(plugin_site, tmp_path: Path):
    """A one-shot ``adcore fit`` tells the plugins' subscribers which version it stored; a
    subscriber that raises is reported on stderr and the fit still succeeds."""
    log = tmp_path / "saved.jsonl"
    plugin_site.add(
        "adcore-registry-audit",
        {"registryaudit": "adcore_registry_audit"},
        {
            "adcore_registry_audit": f"""
            import json
            import adcore

            def _append(event):
                with open({str(log)!r}, "a") as f:
                    f.write(json.dumps(event.to_dict()) + "\\n")

            def _broken(event):
                raise RuntimeError("audit database down")

            @adcore.hookimpl
            def register_event_subscribers(register):
                register("audit", _append, types="model.saved")
                register("broken", _broken)
            """
        },
    )
    data = tmp_path / "train.csv"
    rows = np.random.default_rng(0).normal(size=(50, 2))
    data.write_text("a,b\n" + "".join(f"{a},{b}\n" for a, b in rows))
    proc = plugin_site.run(
        "fit", "--algo", "core:hbos", "--input", str(data), "--model", "payments", "--seed", "3",
        "--store", str(tmp_path / "store"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "payments@1"
    assert "audit database down" in proc.stderr
    (event,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert event["type"] == "model.saved" and event["model"] == "payments@1" and event["seed"] == 3
    assert event["stream"] == "cli:fit"
