"""``adcore bench --task timeseries`` with the time-series detectors themselves (``ts:NAME``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adcore.cli.main import run_cli
from adcore.domain.ts_metrics import nab_probation_length
from adcore.services.bench import run_timeseries_benchmark, ts_series_scores
from adcore.timeseries.detectors import build_ts_detector
from adcore.timeseries.detectors.base import score_with_warmup
from adcore.timeseries.nab import load_corpus

N = 1000
STEP = np.timedelta64(5, "m")
START = np.datetime64("2024-01-01T00:00:00")


def _stamp(i: int) -> str:
    return str(START + i * STEP).replace("T", " ") + ".000000"


def _write(root: Path, name: str, values: np.ndarray) -> None:
    path = root / "data" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    times = START + np.arange(values.size) * STEP
    rows = [f"{str(t).replace('T', ' ')},{v:.6f}" for t, v in zip(times, values, strict=True)]
    path.write_text("timestamp,value\n" + "\n".join(rows) + "\n")


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """Two seasonal series, one with a level shift inside its label window, one quiet."""
    rng = np.random.default_rng(3)
    t = np.arange(N)
    shifted = 10 + np.sin(2 * np.pi * t / 48) + 0.1 * rng.standard_normal(N)
    shifted[700:720] += 6.0
    quiet = 5 + np.sin(2 * np.pi * t / 48) + 0.1 * rng.standard_normal(N)
    root = tmp_path / "nab"
    _write(root, "cat/shift.csv", shifted)
    _write(root, "cat/quiet.csv", quiet)
    windows = {"cat/shift.csv": [[_stamp(690), _stamp(730)]], "cat/quiet.csv": []}
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    return root


def test_ts_scores_are_the_detector_itself_fitted_on_the_probation(corpus_dir):
    """Same harness as benchmarks/nab_detectors.py: a fresh detector per series, fitted on
    NAB's probationary period (scored 0), then causal: the same scores, so the same figures."""
    corpus = load_corpus(corpus_dir)
    scores = ts_series_scores("ts:auto", corpus)
    for key, item in corpus.series.items():
        warmup = int(nab_probation_length(item.values.size))
        assert warmup == 150
        expected = score_with_warmup(build_ts_detector("auto"), item.values, warmup, item.timestamps)
        np.testing.assert_array_equal(scores[key], expected)
        assert not scores[key][:warmup].any()
    # the level shift is what ts:auto flags most, inside its window
    assert 700 <= int(np.argmax(scores["cat/shift.csv"])) <= 730


def test_ts_scores_use_no_later_record(corpus_dir):
    corpus = load_corpus(corpus_dir)
    before = ts_series_scores("ts:discord", corpus)["cat/shift.csv"]
    item = corpus.series["cat/shift.csv"]
    changed = item.values.copy()
    changed[800:] += 50.0
    detector = build_ts_detector("discord")
    after = score_with_warmup(detector, changed, 150, item.timestamps)
    np.testing.assert_array_equal(after[:800], before[:800])
    assert after[800] != before[800]


def test_bench_cli_scores_ts_and_tabular_detectors_side_by_side(capfd, corpus_dir, tmp_path):
    out = tmp_path / "report.json"
    argv = ["bench", "--task", "timeseries", "-d", str(corpus_dir), "-a", "ts:auto,ts:discord,core:mad"]
    assert run_cli([*argv, "--metric", "vus-pr,nab", "-o", str(out), "--json"]) == 0
    summary = json.loads(capfd.readouterr().out)["summary"]
    assert list(summary) == ["ts:auto", "ts:discord", "core:mad"]
    for name in ("ts:auto", "ts:discord"):
        assert summary[name]["error"] is None
        assert summary[name]["nab"]["standard"] > 50  # the shift is caught early in its window
        assert summary[name]["mean_vus_pr"] > 0.2
    written = json.loads(out.read_text())["detectors"]["ts:auto"]["nab"]["standard"]["per_series"]
    assert written["cat/shift.csv"]["tp"] >= 1 and written["cat/quiet.csv"]["fp"] == 0
    assert run_cli(argv) == 0  # the tables
    shown = capfd.readouterr().out
    assert "ts:auto" in shown and "ts:discord" in shown and "core:mad" in shown


def test_the_service_matches_the_cli(corpus_dir):
    corpus, records = run_timeseries_benchmark(["ts:auto"], corpus_dir, metrics=("nab",))
    assert records[0].error is None and len(corpus.series) == 2
    assert records[0].evaluation.nab["standard"].score > 50


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--task", "timeseries", "-a", "ts:nope"], "unknown time-series detector 'ts:nope'"),
        (["-a", "ts:auto"], "ts:auto is a time-series detector: add --task timeseries"),
        (["--task", "timeseries", "-a", "ts:discord", "--param", "x=1"], "No such option"),
    ],
)
def test_bad_ts_bench_options_are_one_line_errors(capfd, corpus_dir, argv, message):
    assert run_cli(["bench", "-d", str(corpus_dir), *argv]) == 2
    err = capfd.readouterr().err
    assert message in err
