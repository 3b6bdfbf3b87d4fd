"""Streams: ``--min-anomalies K --within N`` (per key, suppressed), p-values and ``fdr:Q``.

The rule gates the ``anomaly.detected`` events, never the per-record labels: a gated run writes
exactly the output of an ungated one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import adcore
from adcore.cli.main import run_cli
from adcore.errors import NotFittedError, ParameterError
from adcore.services.streaming.alert_rule import AlertRule
from adcore.services.streaming.threshold import FollowingThreshold


# ------------------------------------------------------------------------ the rule
def _fired(rule: AlertRule, flags: list[int], keys: list[Any] | None = None) -> list[int]:
    """Indices of the records whose event passed (events are the record indices)."""
    events = [i for i, f in enumerate(flags) if f]
    return rule.observe(keys, [bool(f) for f in flags], events)


def test_k_of_n_needs_k_anomalies_among_the_last_n_records():
    rule = AlertRule(min_anomalies=2, within=3)
    #            0  1  2  3  4  5  6  7  8
    flags = [1, 0, 0, 1, 0, 1, 1, 1, 0]
    # 0: alone; 3: the one before is 3 records back (0 is out of 1..3); 5: 3 and 5 within 3 -> fires
    assert _fired(rule, flags) == [5, 6, 7]


def test_k_one_n_one_passes_every_anomaly():
    rule = AlertRule()
    assert rule.trivial
    assert _fired(rule, [1, 0, 1, 1]) == [0, 2, 3]


def test_the_rule_is_the_same_whatever_the_segmentation():
    rng = np.random.default_rng(0)
    flags = (rng.uniform(size=500) < 0.1).astype(int).tolist()
    whole = _fired(AlertRule(3, 10, suppress=25), flags) + AlertRule(3, 10, 25).close()
    rule = AlertRule(3, 10, suppress=25)
    parts: list[int] = []
    for start in range(0, 500, 7):
        chunk = flags[start : start + 7]
        events = [start + i for i, f in enumerate(chunk) if f]
        parts += rule.observe(None, [bool(f) for f in chunk], events)
    assert sorted(parts + rule.close()) == sorted(whole)


def test_each_key_counts_its_own_records():
    rule = AlertRule(min_anomalies=2, within=2)
    keys = ["a", "b", "a", "b", "a", "b"]
    flags = [1, 1, 1, 0, 0, 1]
    # a: records 0, 2 (its 1st and 2nd) -> fires at 2; b: 1 then 3 (normal) then 5 -> its last 2 are 0, 1
    assert _fired(rule, flags, keys) == [2]


def test_suppression_holds_a_key_back_then_sends_one_for_the_span():
    rule = AlertRule(min_anomalies=1, within=1, suppress=10)
    flags = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    # 0 at once (its span: the next 10 records); 1 and 2 held back; 12 is past the span: sent
    assert _fired(rule, flags) == [0, 12]
    assert rule.close() == []
    rule = AlertRule(min_anomalies=1, within=1, suppress=10)
    assert _fired(rule, [1, 1, 0, 1]) == [0]
    assert rule.close() == [3]  # the latest held back, at the end of the stream


def test_other_keys_are_not_suppressed_by_one_noisy_key():
    rule = AlertRule(min_anomalies=1, within=1, suppress=100)
    out = _fired(rule, [1, 1, 1, 1], ["a", "a", "b", "a"])
    assert out == [0, 2]


@pytest.mark.parametrize(
    ("k", "n", "r", "needle"),
    [
        (0, 1, 0, "--min-anomalies"),
        (3, 2, 0, "--within (2)"),
        (1, 1, -1, "--suppress"),
        (1, 0, 0, "--within"),
    ],
)
def test_bad_rules_are_parameter_errors(k, n, r, needle):
    with pytest.raises(ParameterError, match=None) as info:
        AlertRule(k, n, r)
    assert needle in str(info.value) and "\n" not in str(info.value)


# ------------------------------------------------------------------------ streams
def _records(n: int = 1500, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    X[[i for i in (700, 900, 901, 902, 1300) if i < n]] += 7.0
    return [{"id": i, "host": f"h{i % 3}", "a": float(x[0]), "b": float(x[1])} for i, x in enumerate(X)]


def _stream(**options: Any) -> tuple[list[dict], list[Any]]:
    out: list[dict] = []
    events: list[Any] = []
    options.setdefault("contamination", 0.01)
    with adcore.open_stream(_records(), out, subscribers=[events.append], seed=0, **options) as s:
        s.run()
    return out, [e for e in events if e.type == "anomaly.detected"]


@pytest.mark.parametrize("algo", ["core:hbos", "core:rshash"])
def test_the_rule_gates_events_and_leaves_labels_alone(algo):
    plain_out, plain = _stream(algo=algo, window=300)
    gated_out, gated = _stream(algo=algo, window=300, min_anomalies=2, within=5, suppress=50)
    assert gated_out == plain_out
    assert 0 < len(gated) < len(plain)
    labelled = {r["id"] for r in plain_out if r.get("label") == 1}
    assert {e.record_id for e in gated} <= labelled
    assert {e.record_id for e in plain} == labelled


def test_alert_key_reads_the_record_field():
    _, gated = _stream(algo="core:hbos", window=300, min_anomalies=2, within=2, alert_key="host")
    # the burst 900-902 spreads over three hosts: no host has 2 of its last 2 records anomalous there
    assert not {900, 901, 902} & {e.record_id for e in gated}
    _, whole = _stream(algo="core:hbos", window=300, min_anomalies=2, within=2)
    assert {901, 902} <= {e.record_id for e in whole}  # one key: 2 of the last 2 records


@pytest.mark.parametrize("algo", ["core:hbos", "core:rshash"])
def test_stream_writes_p_values(algo):
    out, _ = _stream(algo=algo, window=300, p_values=True)
    assert all("p_value" in r for r in out)
    first_p = next(i for i, r in enumerate(out) if r["p_value"] is not None)
    assert first_p <= 400  # after the warm-up, and the settling of an online memory (128 scores)
    scored = [r["p_value"] for r in out[first_p:]]
    assert all(p is not None and 0 < p <= 1 for p in scored)
    by_id = {r["id"]: r["p_value"] for r in out}
    assert by_id[900] <= 0.01 and by_id[901] <= 0.01
    # valid-ish under the null: about a tenth of the normal records at or below 0.1
    normal = np.array(
        [p for r, p in zip(out[first_p:], scored, strict=True) if r["id"] not in (700, 900, 901, 902, 1300)]
    )
    assert (normal <= 0.1).mean() < 0.16


@pytest.mark.parametrize("algo", ["core:hbos", "core:rshash"])
def test_stream_fdr_labels_with_bh_per_segment(algo):
    out, _ = _stream(algo=algo, window=600, threshold="fdr:0.05", batch_size=20, p_values=True)
    flagged = {r["id"] for r in out if r.get("label") == 1}
    assert {900, 901, 902} <= flagged
    # BH per segment of 20: a segment of normal records has a false label with probability <= 0.05
    assert len(flagged - {700, 900, 901, 902, 1300}) <= 10, sorted(flagged)


def test_fdr_online_threshold_waits_for_its_calibration():
    follow = FollowingThreshold("fdr:0.01", 0.1, memory=1000)
    assert follow.settle >= 200
    labels, _, p = follow.labels_and_p_values(np.r_[np.zeros(10), 1e9])
    assert labels.sum() == 0 and np.isnan(p).all()


def test_a_batch_too_large_for_the_calibration_is_reported():
    notes: list[str] = []
    with adcore.open_stream(
        _records(50), [], algo="core:hbos", window=100, threshold="fdr:0.05", report=notes.append
    ) as s:
        s.run()
    assert any("--batch-size 5 or less" in note for note in notes), notes


def test_cli_refuses_a_rule_that_cannot_hold(capfd, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"a": 1}\n')
    code = run_cli(["stream", "--source", f"file://{source}", "--min-anomalies", "3", "--within", "2"])
    _, err = capfd.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "--within (2) must be at least --min-anomalies (3)" in lines[0]


def test_a_stored_fdr_model_streams_p_values_and_bh_labels(tmp_path):
    rng = np.random.default_rng(1)
    adcore.fit(
        rng.normal(size=(2000, 2)),
        algo="core:hbos",
        threshold="fdr:0.05",
        name="f",
        store=str(tmp_path),
        seed=0,
    )
    out: list[dict] = []
    with adcore.open_stream(
        _records(), out, model="f", store=str(tmp_path), p_values=True, batch_size=25
    ) as s:
        s.run()
    p = np.array([r["p_value"] for r in out])
    assert np.all((p > 0) & (p <= 1))
    flagged = {r["id"] for r in out if r["label"] == 1}
    assert {900, 901, 902} <= flagged and len(flagged) < 20


def test_stored_model_without_calibration_is_refused_for_p_values(tmp_path):
    rng = np.random.default_rng(0)
    adcore.fit(rng.normal(size=(200, 2)), algo="core:hbos", name="m", store=str(tmp_path), seed=0)
    with pytest.raises(NotFittedError, match="no calibration scores"):
        adcore.open_stream([], [], model="m", store=str(tmp_path), p_values=True)
