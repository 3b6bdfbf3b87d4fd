"""``adcore stream --algo ts:NAME --series FIELD``: thousands of series, one causal detector each."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adcore.cli.main import run_cli
from adcore.domain.events import AnomalyDetected, event_from_dict
from adcore.errors import ParameterError, UnknownAlgorithmError
from adcore.timeseries.detectors import build_ts_detector
from adcore.timeseries.detectors.base import score_with_warmup
from adcore.timeseries.stream import epoch_seconds, open_series_stream

#: one block of the anomaly likelihood = the warm-up, so 30 points give 20 scores per series
PARAMS = {"likelihood.block": 10}
WARMUP = 10
T0 = 1_700_000_000


def _series_values(n_series: int, n_points: int, seed: int = 0) -> np.ndarray:
    """A seasonal level per series plus noise: row s is series s."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_points)
    phase = rng.uniform(0, 2 * np.pi, size=(n_series, 1))
    level = rng.uniform(10, 100, size=(n_series, 1))
    return level + 5 * np.sin(t / 4 + phase) + rng.standard_normal((n_series, n_points))


def _interleaved(values: np.ndarray) -> list[dict]:
    """One point per series per second, series after series within each second."""
    n_series, n_points = values.shape
    return [
        {"host": f"h{s}", "ts": T0 + t, "value": float(values[s, t])}
        for t in range(n_points)
        for s in range(n_series)
    ]


def _run(records: list, **options) -> tuple[list[dict], list, list[dict], object]:
    out: list[dict] = []
    events: list = []
    letters: list[dict] = []
    options.setdefault("params", PARAMS)
    with open_series_stream(
        records,
        out,
        algo=options.pop("algo", "ts:auto"),
        series="host",
        time_field="ts",
        dead_letter=letters,
        subscribers=[events.append],
        **options,
    ) as stream:
        stream.run()
    return out, events, letters, stream


def _by_series(out: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for rec in out:
        grouped.setdefault(rec["host"], []).append(rec)
    return grouped


@pytest.fixture(scope="module")
def thousands():
    """3,000 series x 30 points, interleaved, with one spike planted in series h1234."""
    values = _series_values(3000, 30)
    values[1234, 25] += 60.0
    records = _interleaved(values)
    out, events, letters, stream = _run(records)
    return values, records, out, events, letters, stream


def test_thousands_of_series_every_record_out_in_order(thousands):
    _, records, out, _, letters, stream = thousands
    assert len(out) == len(records) == 90_000
    assert [(r["host"], r["ts"]) for r in out] == [(r["host"], r["ts"]) for r in records]
    assert letters == []
    stats = stream.stats
    assert (stats.records, stats.series_seen, stats.series) == (90_000, 3000, 3000)
    assert (stats.warmup, stats.scored) == (3000 * WARMUP, 3000 * 20)


def test_warmup_records_are_flagged_then_every_point_is_scored(thousands):
    _, _, out, _, _, _ = thousands
    for recs in _by_series(out).values():
        head, tail = recs[:WARMUP], recs[WARMUP:]
        assert all(r["warmup"] is True and r["score"] is None and r["label"] is None for r in head)
        assert all("warmup" not in r and 0.0 <= r["score"] <= 1.0 and r["label"] in (0, 1) for r in tail)
        assert all("value" not in r for r in recs)  # the value is the feature: --keep-features keeps it


def test_each_series_scores_equal_its_detector_alone(thousands):
    """Exactly what the detector gives on the series alone: other series change nothing."""
    values, _, out, _, _, _ = thousands
    grouped = _by_series(out)
    for s in (0, 1, 777, 1234, 2999):
        streamed = np.array([r["score"] or 0.0 for r in grouped[f"h{s}"]])
        alone = score_with_warmup(build_ts_detector("ts:auto", **PARAMS), values[s], WARMUP)
        assert np.array_equal(streamed, alone)


def test_a_series_does_not_depend_on_the_others_records():
    values = _series_values(40, 30, seed=3)
    full, *_ = _run(_interleaved(values))
    other = values.copy()
    other[1:] = _series_values(39, 30, seed=9)  # every other series changed
    mixed, *_ = _run(_interleaved(other))
    alone, *_ = _run([r for r in _interleaved(values) if r["host"] == "h0"])
    assert _by_series(full)["h0"] == _by_series(mixed)["h0"] == alone
    assert _by_series(full)["h1"] != _by_series(mixed)["h1"]


def test_output_does_not_depend_on_the_batch_size():
    records = _interleaved(_series_values(25, 30, seed=5))
    big, *_ = _run(records, batch_size=1000)
    small, *_ = _run(records, batch_size=7)
    assert big == small


def test_a_planted_spike_is_labelled_with_an_event_naming_its_series(thousands):
    _, _, out, events, _, _ = thousands
    spike = _by_series(out)["h1234"][25]
    assert spike["label"] == 1 and spike["score"] >= 0.5
    alerts = [e for e in events if e.type == "anomaly.detected"]
    mine = [e for e in alerts if e.series == "h1234"]
    assert any(out[e.offset] == spike for e in mine)
    assert all(out[e.offset]["host"] == e.series and out[e.offset]["label"] == 1 for e in alerts)
    assert sum(e.type == "detection.completed" for e in events) == 90  # one per 1,000 records


def test_memory_per_series_is_the_detectors_fixed_state(thousands):
    *_, stream = thousands
    service = stream.service
    per_series = service.state_nbytes() / len(service.series_keys())
    one = build_ts_detector("ts:auto", **PARAMS)
    one.fit(np.arange(WARMUP, dtype=float))
    assert per_series == one.state_nbytes() < 128 * 1024  # fixed-size buffers, whatever the points
    # the warm-up values are released once a series is fitted
    assert all(state.values is None for state in service._series.values())


def test_state_per_series_does_not_grow_with_the_points():
    *_, s1 = _run(_interleaved(_series_values(5, 30)))
    *_, s2 = _run(_interleaved(_series_values(5, 300)))
    assert s1.service.state_nbytes() == s2.service.state_nbytes()


def test_max_series_evicts_the_least_recently_seen():
    notes: list[str] = []
    records = _interleaved(_series_values(50, 12))
    out, _, _, stream = _run(records, max_series=10, report=notes.append)
    assert len(out) == len(records)
    assert stream.stats.series == 10 and stream.stats.evicted == 50 * 12 - 10
    assert len(notes) == 1 and "--max-series 10" in notes[0]
    assert all(r.get("warmup") for r in out)  # each series keeps coming back and warming up again
    # the 10 most recently seen series are the ones kept
    assert stream.service.series_keys() == [f"h{s}" for s in range(40, 50)]


def test_bad_records_are_dead_letters_and_the_stream_goes_on():
    good = _interleaved(_series_values(3, 15))
    bad = [
        '{"ts": 1700000100, "value": 1.0}',  # no series
        '{"host": null, "ts": 1700000100, "value": 1.0}',
        '{"host": {"a": 1}, "ts": 1700000100, "value": 1.0}',
        '{"host": "h0", "ts": 1700000100}',  # no value
        '{"host": "h0", "ts": 1700000100, "value": "high"}',
        '{"host": "h0", "ts": 1700000100, "value": NaN}',
        '{"host": "h0", "value": 1.0}',  # no time
        '{"host": "h0", "ts": "soon", "value": 1.0}',
        '{"host": "h0", "ts": 1600000000, "value": 1.0}',  # earlier than h0's last point
        "[1, 2]",
        "not json",
    ]
    records = [json.dumps(r) for r in good[:20]] + bad + [json.dumps(r) for r in good[20:]]
    out, _, letters, stream = _run(records)
    assert len(out) == len(good)
    assert len(letters) == len(bad)
    assert sorted(d["line_number"] for d in letters) == list(range(21, 21 + len(bad)))
    errors = " | ".join(d["error"] for d in sorted(letters, key=lambda d: d["line_number"]))
    for expected in (
        "missing series field 'host'",
        "series field 'host' is null",
        "must be a string or a number, not an object",
        "missing feature 'value'",
        "not a finite number",
        "NaN",
        "missing time field 'ts'",
        "'soon' is neither ISO 8601 nor epoch seconds",
        "out of order",
    ):
        assert expected in errors
    assert stream.stats.malformed + stream.stats.rejected == len(bad)
    clean, *_ = _run(good)
    assert out == clean  # the bad records changed nothing for the good ones


def test_equal_timestamps_are_scored_in_arrival_order_and_iso_times_are_read():
    records = [
        {"host": "a", "ts": f"2024-01-01T00:00:{t // 2:02d}Z", "value": float(t % 7)} for t in range(40)
    ]
    out, _, letters, _ = _run(records, warmup=10)
    assert letters == [] and [r["ts"] for r in out] == [r["ts"] for r in records]
    assert epoch_seconds("2024-01-01T00:00:00Z") == epoch_seconds("2024-01-01T00:00:00") == 1704067200.0
    assert epoch_seconds(1704067200000) == epoch_seconds("1704067200") == 1704067200.0  # ms above 1e11


def test_threshold_labels_at_or_above_it():
    records = _interleaved(_series_values(4, 30, seed=2))
    out, *_ = _run(records, threshold="0.0")
    assert all(r["label"] == 1 for r in out if not r.get("warmup"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"threshold": "mad"}, "is not a number"),
        ({"threshold": "1.5"}, "outside [0, 1]"),
        ({"algo": "ts:sub-core:mad", "warmup": 5}, "too short"),
        ({"warmup": 2, "params": {}}, "too short"),
        ({"max_series": 0}, "--max-series"),
    ],
)
def test_bad_options_fail_before_a_record_is_read(options, message):
    with pytest.raises(ParameterError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _run([], **options)


def test_an_unknown_detector_fails_before_a_record_is_read():
    with pytest.raises(UnknownAlgorithmError, match="unknown time-series detector 'ts:nope'; one of ts:auto"):
        _run([], algo="ts:nope")


def test_anomaly_event_round_trips_its_series():
    event = AnomalyDetected(
        stream="s", offset=1, line_number=2, score=0.9, threshold=0.5, model="ts:auto", series="web-1"
    )
    assert event_from_dict(event.to_dict()) == event
    assert event.to_dict()["series"] == "web-1"


def test_cli_file_to_file_with_events(tmp_path: Path, capsys):
    values = _series_values(200, 30, seed=4)
    values[7, 28] += 80.0
    source = tmp_path / "metrics.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in _interleaved(values)))
    sink, events = tmp_path / "scored.jsonl", tmp_path / "events.jsonl"
    code = run_cli(
        [
            "stream", "--algo", "ts:auto", "--param", "likelihood.block=10", "--series", "host",
            "--time", "ts", "--source", f"file://{source}", "--sink", f"file://{sink}",
            "--events", f"file://{events}", "--keep-features",
        ]
    )  # fmt: skip
    assert code == 0
    out = [json.loads(line) for line in sink.read_text().splitlines()]
    assert len(out) == 6000 and all("value" in r for r in out)
    assert _by_series(out)["h7"][28]["label"] == 1
    alerts = [json.loads(line) for line in events.read_text().splitlines()]
    assert any(e["type"] == "anomaly.detected" and e["series"] == "h7" for e in alerts)
    assert "stream: 6000 records (2000 warm-up) in 200 series" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--series", "host"], "--series needs a time-series detector"),
        (["--algo", "ts:auto", "--drift-on", "features"], "--drift-on cannot be combined"),
        (["--algo", "ts:auto", "--retrain", "every:5"], "never or on-drift"),
        (["--algo", "ts:auto", "--window", "50"], "--window cannot be combined"),
        (["--algo", "core:hbos", "--time", "ts"], "need --algo ts:NAME"),
    ],
)
def test_cli_refuses_options_a_series_stream_has_no_use_for(args, message, capsys):
    assert run_cli(["stream", *args, "--source", "file:///dev/null"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_without_series_the_whole_stream_is_one_series():
    values = _series_values(1, 40, seed=6)[0]
    out: list[dict] = []
    with open_series_stream([{"value": float(v)} for v in values], out, params=PARAMS) as stream:
        stream.run()
    alone = score_with_warmup(build_ts_detector("ts:auto", **PARAMS), values, WARMUP)
    assert np.array_equal([r["score"] or 0.0 for r in out], alone)
    assert stream.stats.series_seen == 1


def test_min_anomalies_counts_each_series_apart():
    """--min-anomalies 2 --within 2: an alert needs two anomalous points in a row of one series."""
    records = _interleaved(_series_values(6, 30, seed=8))
    _, events, *_ = _run(records, threshold="0.0", min_anomalies=2, within=2)
    alerts = [e for e in events if e.type == "anomaly.detected"]
    per_series = {f"h{s}": 20 - 1 for s in range(6)}  # every scored point, bar each series' first
    assert {e.series: sum(a.series == e.series for a in alerts) for e in alerts} == per_series


class _FullDisk:
    """A sink that cannot write (what a full disk looks like to the stream)."""

    def write(self, value, metadata=None):
        raise OSError(28, "No space left on device")

    def flush(self):
        pass

    def close(self):
        pass


def test_a_sink_that_fails_leaves_the_records_in_the_dead_letters():
    records = _interleaved(_series_values(3, 4))
    letters: list[dict] = []
    stream = open_series_stream(records, _FullDisk(), series="host", dead_letter=letters)
    with stream, pytest.raises(OSError):
        stream.run()
    assert len(letters) == len(records)
    assert all("No space left on device" in d["error"] for d in letters)


# ------------------------------------------------------------------ drift per series


def _shifted(n_points: int = 600, shift_at: int = 350) -> list[dict]:
    """Three series of noise around 10; h1's level moves up by 8 at ``shift_at``."""
    rng = np.random.default_rng(0)
    values = 10 + rng.standard_normal((3, n_points))
    values[1, shift_at:] += 8
    return _interleaved(values)


def _drift_run(records: list, **options) -> tuple[list[dict], list, object]:
    out: list[dict] = []
    events: list = []
    with open_series_stream(
        records,
        out,
        algo="ts:gaussian",
        series="host",
        time_field="ts",
        subscribers=[events.append],
        **options,
    ) as stream:
        stream.run()
    return out, [e for e in events if e.type == "drift.detected"], stream


def test_drift_is_watched_per_series_and_refits_only_the_drifted_one():
    records = _shifted()
    plain, none, _ = _drift_run(records)
    out, drifts, stream = _drift_run(records, drift="adwin", retrain="on-drift")
    assert not none
    assert drifts and {e.series for e in drifts} == {"h1"}
    assert all(e.on == "values" and e.detector == "adwin" and e.action == "retrain" for e in drifts)
    shift_offset = 350 * 3 + 1  # h1's first shifted record, in output order
    assert shift_offset <= drifts[0].offset < shift_offset + 3 * 50  # found within 50 of its points
    assert out[drifts[0].offset]["host"] == "h1"
    assert stream.stats.drifts == len(drifts) and stream.stats.retrains == len(drifts)
    # the series that did not drift score exactly as without drift watching
    for a, b in zip(plain, out, strict=True):
        if a["host"] != "h1":
            assert a == b
    # h1 scores as before up to its first drift, then with the detector refitted on its recent points
    first = drifts[0].offset
    assert plain[: first + 1] == out[: first + 1]
    after = [
        (a["score"], b["score"])
        for a, b in zip(plain[first + 1 :], out[first + 1 :], strict=True)
        if a["host"] == "h1"
    ]
    assert any(x != y for x, y in after)


def test_drift_without_retrain_only_reports_and_events_round_trip():
    _, drifts, stream = _drift_run(_shifted(), drift="ks", drift_params=["window=50"])
    assert drifts and {e.series for e in drifts} == {"h1"}
    assert all(e.action == "none" for e in drifts) and stream.stats.retrains == 0
    assert event_from_dict(drifts[0].to_dict()) == drifts[0]
    assert drifts[0].to_dict()["series"] == "h1" and drifts[0].p_value < 0.01


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retrain": "on-drift"}, "need --drift"),
        ({"drift": "adwin", "retrain": "every:10"}, "never or on-drift"),
        ({"drift": "nope"}, "unknown drift detector"),
        ({"drift": "ks", "drift_params": {"nope": 1}}, "unknown parameter"),
    ],
)
def test_bad_drift_options_fail_before_a_record_is_read(options, message):
    with pytest.raises(ParameterError, match=message):
        _drift_run([], **options)


def test_stream_cli_drift_per_series(tmp_path, capfd):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in _shifted()))
    events = tmp_path / "events.jsonl"
    argv = [
        "stream",
        "--algo",
        "ts:gaussian",
        "--series",
        "host",
        "--time",
        "ts",
        "--source",
        f"file://{source}",
    ]
    argv += ["--sink", f"file://{tmp_path / 'out.jsonl'}", "--drift", "adwin", "--retrain", "on-drift"]
    assert run_cli([*argv, "--events", f"file://{events}"]) == 0
    assert "refits)" in capfd.readouterr().err
    found = [json.loads(line) for line in events.read_text().splitlines()]
    assert any(e["type"] == "drift.detected" and e["series"] == "h1" for e in found)
    assert run_cli([*argv[:-4], "--drift-on", "features", "--drift", "ks"]) == 2
    assert "--drift-on cannot be combined" in capfd.readouterr().err
