"""Causal time-series detectors: the streaming contract, the likelihood, the registry."""

from __future__ import annotations

import numpy as np
import pytest

from adcore.errors import DataError, ParameterError, UnknownAlgorithmError
from adcore.timeseries.detectors import build_ts_detector
from adcore.timeseries.detectors.base import Ring, TimeSeriesDetector, score_with_warmup
from adcore.timeseries.detectors.likelihood import AnomalyLikelihood

# sub-core:* builds a registered tabular detector: numpy-only core detectors, no sklearn
NAMES = ["auto", "discord", "seasonal", "gaussian", "spectral", "sub-core:hbos", "sub-core:mad", "extreme"]
#: small settings so the likelihood is active on short test series
SMALL = {"likelihood.history": 400, "likelihood.block": 50}


def make(name: str) -> TimeSeriesDetector:
    return build_ts_detector(name, **({} if name == "extreme" else SMALL))


def series(n: int = 1500, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 10 + np.sin(2 * np.pi * t / 50) + 0.1 * rng.normal(size=n)


@pytest.mark.parametrize("name", NAMES)
def test_score_series_equals_update_score_point_by_point(name: str) -> None:
    x = series()
    x[1100] += 5.0
    vectorised, pointwise = make(name).fit(x[:300]), make(name).fit(x[:300])
    # in uneven chunks: the state a batch leaves behind is the one the points leave
    batch = np.concatenate(
        [vectorised.score_series(x[a:b]) for a, b in ((300, 301), (301, 777), (777, 1500))]
    )
    points = np.array([pointwise.update_score(v) for v in x[300:]])
    assert isinstance(vectorised, TimeSeriesDetector)
    np.testing.assert_allclose(batch, points, rtol=0, atol=1e-12)
    assert ((batch >= 0) & (batch <= 1)).all()
    assert vectorised.state_nbytes() == pointwise.state_nbytes()


@pytest.mark.parametrize("name", NAMES)
def test_scores_of_a_prefix_do_not_change_when_points_are_appended(name: str) -> None:
    x = series(1200)
    longer = np.concatenate((x, 100 + series(600, seed=1)))
    first = score_with_warmup(make(name), x, 300)
    again = score_with_warmup(make(name), longer, 300)
    np.testing.assert_array_equal(again[: x.size], first)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("auto", "spike"),
        ("auto", "shift"),
        ("discord", "spike"),
        ("gaussian", "spike"),
        ("sub-core:mad", "spike"),
    ],
)
def test_a_planted_anomaly_is_scored_above_the_rest(name: str, kind: str) -> None:
    x = series(2000)
    at = 1500
    if kind == "spike":
        x[at] += 8.0
    else:
        x[at:] += 3.0
    scores = score_with_warmup(make(name), x, 300)
    peak = int(np.argmax(scores))
    assert at <= peak <= at + 10, (peak, scores[at - 5 : at + 12])
    before = scores[300:at]
    assert scores[peak] > before.max()


@pytest.mark.parametrize("name", ["auto", "discord", "gaussian", "spectral", "sub-core:hbos"])
def test_state_per_series_is_bounded(name: str) -> None:
    detector = make(name).fit(series(400))
    after_fit = detector.state_nbytes()
    detector.score_series(series(20_000, seed=2))
    assert detector.state_nbytes() == after_fit  # fixed-size buffers: no growth with the stream
    assert after_fit < 64 * 1024
    default = build_ts_detector(name).fit(series(400))
    assert default.state_nbytes() < 64 * 1024


def test_auto_is_discord_seasonal_and_extreme_and_deterministic() -> None:
    from adcore.timeseries.detectors.ensemble import Ensemble
    from adcore.timeseries.detectors.extreme import NewExtreme

    x = series(2000)
    x[1700:1720] += 2.0
    auto = score_with_warmup(build_ts_detector("ts:auto"), x, 300)
    np.testing.assert_array_equal(auto, score_with_warmup(build_ts_detector("auto"), x, 300))
    members = [build_ts_detector("discord"), build_ts_detector("seasonal"), NewExtreme(tolerance=0.05)]
    by_hand = Ensemble(members, combine="max")
    np.testing.assert_array_equal(auto, score_with_warmup(by_hand, x, 300))


def test_likelihood_alarms_once_per_run_of_improbable_scores() -> None:
    post = AnomalyLikelihood(short=1, history=200, block=20)
    rng = np.random.default_rng(0)
    post.fit(rng.normal(1.0, 0.1, size=200))
    calm = post.batch(rng.normal(1.0, 0.1, size=50))
    burst = post.batch(np.full(3, 5.0))
    assert calm.max() < 0.5
    assert burst[0] == 1.0  # p far below 1e-10: the top score
    # the rest of the run shows the yellow level (p = 1e-3), well below the alarm
    np.testing.assert_allclose(burst[1:], np.log(1e-3 + 1e-10) / np.log(1e-10))


def test_likelihood_is_silent_until_it_has_one_block_of_history() -> None:
    post = AnomalyLikelihood(short=1, history=100, block=50)
    scores = post.batch(np.concatenate((np.ones(49), [100.0])))
    assert (scores == 0).all()


def test_ring_keeps_the_last_values_oldest_first() -> None:
    ring = Ring(3)
    ring.extend(np.arange(5.0))
    assert ring.view().tolist() == [2.0, 3.0, 4.0]
    ring.push(9.0)
    assert ring.view().tolist() == [3.0, 4.0, 9.0]
    ring.extend(np.array([7.0, 8.0]))  # wraps around the end of the array
    assert ring.view().tolist() == [9.0, 7.0, 8.0]
    assert ring.nbytes == 3 * 8  # one float per slot: the whole per-series cost
    partial = Ring(4)
    partial.extend(np.array([1.0]))
    assert partial.view().tolist() == [1.0] and partial.count == 1


def test_bad_names_values_and_order_are_one_line_errors() -> None:
    with pytest.raises(UnknownAlgorithmError, match="unknown time-series detector 'nope'; one of ts:auto"):
        build_ts_detector("nope")
    with pytest.raises(ParameterError, match="unknown likelihood parameter"):
        build_ts_detector("discord", **{"likelihood.nope": 1})
    with pytest.raises(ParameterError, match="ts:discord"):
        build_ts_detector("discord", nope=1)
    with pytest.raises(ParameterError, match="fit on a warm-up"):
        build_ts_detector("discord").update_score(1.0)
    detector = build_ts_detector("gaussian").fit(series(100))
    with pytest.raises(DataError, match="non-finite"):
        detector.update_score(float("nan"))
    with pytest.raises(DataError, match="non-finite"):
        detector.score_series(np.array([1.0, np.inf]))
    with pytest.raises(ParameterError, match="normalize"):
        build_ts_detector("discord", normalize="bogus")


# --- adcore run --time / --series ------------------------------------------------------


def _write_two_series(path, *, shuffle: bool) -> tuple[np.ndarray, np.ndarray]:
    start = np.datetime64("2024-01-01T00:00:00")
    rows = []
    for host, seed in (("a", 0), ("b", 1)):
        x = series(800, seed=seed)
        if host == "b":
            x[600] += 8.0
        for i, v in enumerate(x):
            if host == "a" and i == 400:
                continue  # a gap
            stamp = start + np.timedelta64(5 * i, "m")
            rows.append((f"{stamp}Z", host, v))
    order = np.random.default_rng(3).permutation(len(rows)) if shuffle else np.arange(len(rows))
    lines = ["timestamp,host,value"] + [f"{rows[i][0]},{rows[i][1]},{float(rows[i][2])!r}" for i in order]
    path.write_text("\n".join(lines) + "\n")
    return order, np.array([r[2] for r in rows])


def test_run_time_series_one_model_per_series_in_any_row_order(tmp_path, capfd) -> None:
    from adcore.cli.main import run_cli

    ordered, shuffled = tmp_path / "ordered.csv", tmp_path / "shuffled.csv"
    _write_two_series(ordered, shuffle=False)
    order, _ = _write_two_series(shuffled, shuffle=True)
    outputs = []
    for data in (ordered, shuffled):
        out = tmp_path / f"scores-{data.stem}.csv"
        code = run_cli(
            [
                "run",
                "--algo",
                "ts:auto",
                "--time",
                "timestamp",
                "--series",
                "host",
                "--input",
                str(data),
                "--output",
                str(out),
                "--param",
                "likelihood.history=400",
                "--param",
                "likelihood.block=50",
            ]
        )
        err = capfd.readouterr().err
        assert code == 0, err
        assert "2 series" in err and "gaps: 1 in 1 series" in err
        table = np.genfromtxt(out, delimiter=",", names=True, dtype=None, encoding="utf-8")
        assert table.dtype.names == ("timestamp", "host", "value", "score", "label")
        outputs.append(table)
    assert "sorted by time: a, b" in err  # the shuffled file was put in order, and said so
    # one row per input row, in input order: the shuffled file's scores are the ordered ones permuted
    np.testing.assert_array_equal(outputs[1]["score"], outputs[0]["score"][order])
    b = outputs[0][outputs[0]["host"] == "b"]
    assert int(np.argmax(b["score"])) in range(600, 611)


def test_run_time_series_errors_are_one_line(tmp_path, capfd) -> None:
    from adcore.cli.main import run_cli

    data = tmp_path / "s.csv"
    _write_two_series(data, shuffle=False)
    cases = [
        (["--algo", "ts:auto"], "--time"),
        (["--algo", "core:hbos", "--time", "timestamp"], "time-series detector"),
        (["--algo", "ts:auto", "--time", "when"], "no time column 'when'"),
        (["--algo", "ts:auto", "--time", "host"], "neither ISO 8601 nor an epoch number"),
        (["--algo", "ts:auto", "--time", "timestamp", "--threshold", "contamination"], "--threshold"),
    ]
    for args, needle in cases:
        code = run_cli(["run", *args, "--input", str(data), "--output", str(tmp_path / "o.csv")])
        err = capfd.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and needle in lines[0], err


def test_parse_times_reads_iso_8601_with_offsets_and_epochs() -> None:
    from adcore.timeseries.run import parse_times

    got = parse_times(["2024-01-01T00:00:00Z", "2024-01-01T01:00:00+01:00", "1704067200", 1704067200000], "t")
    assert (got == 1704067200 * 10**9).all()


def test_seasonal_detects_a_daily_period_and_an_anomaly_inside_the_range() -> None:
    from adcore.timeseries.detectors.extreme import NewExtreme

    n, day = 288 * 8, 288
    t = np.datetime64("2024-01-01T00:00") + np.arange(n) * np.timedelta64(5, "m")
    x = np.sin(2 * np.pi * np.arange(n) / day) + 0.05 * np.random.default_rng(0).normal(size=n)
    at = 6 * day + 60  # near the day's peak: the peak comes out as a trough, still in range
    x[at : at + 20] = -x[at : at + 20]
    vectorised = build_ts_detector("seasonal", **SMALL).fit(x[:600], t[:600])
    pointwise = build_ts_detector("seasonal", **SMALL).fit(x[:600], t[:600])
    assert vectorised.raw.period == day
    scores = vectorised.score_series(x[600:], t[600:])
    points = np.array([pointwise.update_score(v, s) for v, s in zip(x[600:], t[600:], strict=True)])
    np.testing.assert_allclose(scores, points, rtol=0, atol=1e-12)
    assert at <= 600 + int(np.argmax(scores)) <= at + 20
    assert NewExtreme().fit(x[:600]).score_series(x[600:]).max() == 0  # the range check cannot see it
    noise = np.random.default_rng(1).normal(size=n)
    assert build_ts_detector("seasonal").fit(noise[:600], t[:600]).raw.period == 0
    assert build_ts_detector("seasonal", period=7).fit(noise[:600]).raw.period == 7


@pytest.mark.slow
@pytest.mark.parametrize("normalize", ["z", "none"])
def test_discord_is_stumpys_left_matrix_profile(normalize: str, monkeypatch) -> None:
    """Our bounded-history discord equals stumpy's incremental left matrix profile (stumpi)
    when the history holds the whole series; same exclusion zone (half the length)."""
    stumpy = pytest.importorskip("stumpy")
    monkeypatch.setattr(stumpy.config, "STUMPY_EXCL_ZONE_DENOM", 2)
    from adcore.timeseries.detectors.discord import Discord

    x = np.cumsum(np.random.default_rng(0).normal(size=200))
    m = 8
    ours = Discord(length=m, history=1000, normalize=normalize)
    raw = np.concatenate((ours.fit(x[:40]), ours.batch(x[40:])))
    reference = stumpy.stumpi(x[:40], m, egress=False, normalize=normalize == "z")
    for value in x[40:]:
        reference.update(value)
    left = reference.left_P_  # one per subsequence; ours is indexed by its last value
    finite = np.isfinite(left)
    np.testing.assert_allclose(raw[m - 1 :][finite] * np.sqrt(m), left[finite], rtol=1e-6, atol=1e-6)


def test_run_time_series_json_summary(tmp_path, capfd) -> None:
    import json

    from adcore.cli.main import run_cli

    data = tmp_path / "s.csv"
    _write_two_series(data, shuffle=False)
    out = tmp_path / "o.csv"
    args = ["run", "--algo", "ts:gaussian", "--time", "timestamp", "--series", "host", "--json"]
    code = run_cli([*args, "--input", str(data), "--output", str(out)])
    captured = capfd.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["n_records"] == 1599 and summary["output"] == str(out)
    assert [s["name"] for s in summary["series"]] == ["a", "b"]
    assert [s["gaps"] for s in summary["series"]] == [1, 0]
    assert out.is_file()
