"""Built-in detectors on extreme but finite input (issue 15, C1).

Nanosecond timestamps and int64 ids (constant columns above 2**53), values near the
float64 limit, columns spanning the whole float range and subnormals are all finite
float64 input: every built-in detector, and the ensemble's normalisation and combination,
must give finite scores for them (or a typed DataError), never a crash and never NaN.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from server_harness import REPO, running_server

import adcore
from adcore.builtin.detectors import HBOS, RobustZScore
from adcore.domain.combination import COMBINATIONS, NORMALIZATIONS, ScoreCombiner, ScoreNormalizer
from adcore.errors import DataError

N = 60
BIG = np.finfo(np.float64).max  # ~1.798e308
NS_TIMESTAMP = 1733500000000000000.0  # 2024-12-06 in nanoseconds: far above 2**53
_RNG = np.random.default_rng(0)
ORDINARY = _RNG.normal(size=(N, 2))


def _with_ordinary(column: np.ndarray) -> np.ndarray:
    return np.column_stack([column, ORDINARY[:, 0]])


NASTY: dict[str, np.ndarray] = {
    "constant_ns_timestamp": _with_ordinary(np.full(N, NS_TIMESTAMP)),
    "constant_float_max": _with_ordinary(np.full(N, BIG)),
    "constant_minus_float_max": _with_ordinary(np.full(N, -BIG)),
    "constant_1e300": _with_ordinary(np.full(N, 1e300)),
    "plus_minus_1.7e308": _with_ordinary(_RNG.choice([1.7e308, -1.7e308], N)),
    "whole_float_range": _with_ordinary(np.linspace(-1.0, 1.0, N) * BIG),
    "both_1e308_and_minus_1e308": _with_ordinary(np.where(np.arange(N) % 2 == 0, 1e308, -1e308)),
    "2^53+1_integers": _with_ordinary(2.0**53 + _RNG.integers(0, 3, N)),
    "subnormals": _with_ordinary(_RNG.integers(0, 3, N) * 5e-324),
    "constant_subnormal": _with_ordinary(np.full(N, 5e-324)),
    "range_of_one_subnormal_step": _with_ordinary(2.0**-1022 + _RNG.integers(0, 2, N) * 5e-324),
    "one_ordinary_row_among_huge": np.vstack([_RNG.choice([1e308, -1e308], (N - 1, 2)), [[0.0, 1.0]]]),
    "few_huge_among_small": _with_ordinary(np.where(np.arange(N) % 10 == 0, 1e308, ORDINARY[:, 1])),
    "huge_and_subnormal": _with_ordinary(
        np.where(np.arange(N) % 10 == 0, 1e308, (np.arange(N) % 2) * 5e-324)
    ),
    "all_constant": np.full((N, 2), 7.0),
}
#: New rows scored against every fitted model: the extremes of float64 and an ordinary row.
NEW_ROWS = np.array([[BIG, -BIG], [-BIG, BIG], [0.0, 0.0], [5e-324, -5e-324], [NS_TIMESTAMP, 1.0]])

BUILTIN_ALGOS = (
    "core:hbos",
    "core:mad",
    "core:hbos,core:mad",
    *(f"core:hbos,core:mad|normalize={norm}" for norm in NORMALIZATIONS if norm != "zscore"),
    *(f"core:hbos,core:mad|combine={comb}" for comb in COMBINATIONS if comb != "weighted"),
)


def _split(algo: str) -> tuple[str, dict[str, str]]:
    name, _, option = algo.partition("|")
    return name, dict([option.split("=")]) if option else {}


@pytest.mark.parametrize("algo", BUILTIN_ALGOS)
@pytest.mark.parametrize("case", list(NASTY))
def test_builtin_detectors_give_finite_scores_on_extreme_input(case: str, algo: str) -> None:
    name, options = _split(algo)
    try:
        result = adcore.detect(NASTY[case], name, seed=0, **options)
    except DataError as error:  # allowed, if it names what is wrong; never a crash
        pytest.fail(f"{algo} refused {case}: {error}")  # none of these cases needs refusing today
    assert np.isfinite(result.scores).all(), (case, algo, result.scores)
    detector = adcore.create_detector(name, random_state=0, **options).fit(NASTY[case])
    assert np.isfinite(detector.decision_function(NEW_ROWS)).all()


@pytest.mark.parametrize(
    "factory", [HBOS, RobustZScore, lambda: RobustZScore("mean"), lambda: RobustZScore("l2")]
)
@pytest.mark.parametrize("case", list(NASTY))
def test_numpy_detectors_compute_without_overflow_warnings(case: str, factory) -> None:
    """Warnings as errors: no step of fit or scoring overflows silently into inf or NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        model = factory().fit(NASTY[case])
        scores = np.concatenate([model.decision_function(NASTY[case]), model.decision_function(NEW_ROWS)])
    assert np.isfinite(scores).all()
    ordinary = factory().fit(ORDINARY)  # fitted on ordinary data, scoring the extremes
    assert np.isfinite(ordinary.decision_function(NEW_ROWS)).all()


@pytest.mark.parametrize("constant", [NS_TIMESTAMP, 1e300, BIG, -BIG, 2.0**53 + 1, 5e-324, 0.0])
@pytest.mark.parametrize("algo", ["core:hbos", "core:mad", "core:hbos,core:mad"])
def test_a_constant_column_of_any_magnitude_moves_no_ranking(algo: str, constant: float) -> None:
    """A constant column carries no information: it adds the same amount to every training row."""
    plain = adcore.detect(ORDINARY, algo, seed=0).scores
    with_constant = adcore.detect(np.column_stack([np.full(N, constant), ORDINARY]), algo, seed=0).scores
    shift = with_constant - plain
    np.testing.assert_allclose(shift, shift[0], atol=1e-9)


def test_hbos_scores_ordinary_data_exactly_as_before() -> None:
    """The rescaling only touches extreme columns: ordinary ones keep today's bins bit for bit."""
    model = HBOS().fit(ORDINARY)
    assert model.scale_exponents_ is None
    lows, highs = ORDINARY.min(axis=0), ORDINARY.max(axis=0)
    np.testing.assert_array_equal(model.lows_, lows)
    np.testing.assert_array_equal(model.widths_, (highs - lows) / 10)


MEMBER_SCORES: dict[str, np.ndarray] = {
    "constant": np.column_stack([np.full(N, 3.0), ORDINARY[:, 0]]),
    "constant_huge": np.column_stack([np.full(N, 1e300), ORDINARY[:, 0]]),
    "constant_float_max": np.column_stack([np.full(N, BIG), ORDINARY[:, 0]]),
    "some_huge": np.column_stack([np.where(np.arange(N) % 5 == 0, 1e300, ORDINARY[:, 1]), ORDINARY[:, 0]]),
    "plus_minus_float_max": np.column_stack([_RNG.choice([BIG, -BIG], N), ORDINARY[:, 0]]),
    "whole_float_range": np.column_stack([np.linspace(-1.0, 1.0, N) * BIG, ORDINARY[:, 0]]),
    "subnormal": np.column_stack([(np.arange(N) % 3) * 5e-324, ORDINARY[:, 0]]),
}
NEW_MEMBER_SCORES = np.array([[BIG, 0.0], [-BIG, 0.0], [BIG, BIG], [0.0, -BIG], [1.0, 1.0]])


@pytest.mark.parametrize("combine", COMBINATIONS)
@pytest.mark.parametrize("normalize", NORMALIZATIONS)
@pytest.mark.parametrize("case", list(MEMBER_SCORES))
def test_ensemble_normalisation_and_combination_stay_finite(case: str, normalize: str, combine: str) -> None:
    train = MEMBER_SCORES[case]
    options = {"weights": [1.0, 1.0]} if combine == "weighted" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        normalizer = ScoreNormalizer(normalize).fit(train)
        combiner = ScoreCombiner(combine, random_state=0, **options).fit(normalizer.transform(train))
        for scores in (train, NEW_MEMBER_SCORES):
            normalised = normalizer.transform(scores)
            assert np.isfinite(normalised).all(), (case, normalize)
            assert np.isfinite(combiner.combine(normalised)).all(), (case, normalize, combine)


def test_zscore_of_huge_member_scores_matches_the_exact_statistics() -> None:
    """Rescaled by a power of two, the learned mean and spread are those of exact arithmetic."""
    train = np.array([[BIG], [-BIG], [BIG], [-BIG]])
    normalised = ScoreNormalizer("zscore").fit_transform(train)
    np.testing.assert_allclose(normalised.ravel(), [1.0, -1.0, 1.0, -1.0])


# --- as a user meets it: the CLI and the REST server -------------------------------------


def _cli(tmp: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    env.update(ADCORE_STORE=str(tmp / "store"), ADCORE_HOME=str(tmp / "home"), PYTHONPATH=str(REPO))
    env["ADCORE_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "adcore.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=120,
    )


def _events(n: int = 200) -> np.ndarray:
    """Constant nanosecond timestamps, an int64-sized id, a value; row 0's value is an anomaly."""
    values = np.random.default_rng(1).normal(size=n)
    values[0] = 25.0
    return np.column_stack([np.full(n, NS_TIMESTAMP), np.full(n, 2.0**62), values])


def test_cli_run_fit_explain_and_stream_on_timestamps_and_int64_ids(tmp_path: Path) -> None:
    data = _events()
    csv = tmp_path / "events.csv"
    csv.write_text("ts,id,value\n" + "".join(f"{int(t)},{int(i)},{v!r}\n" for t, i, v in data.tolist()))
    npy = tmp_path / "events.npy"
    np.save(npy, data.astype(np.int64))  # int64 columns, as a database export writes them
    for source in (csv, npy):
        out = tmp_path / f"scores-{source.suffix[1:]}.csv"
        proc = _cli(tmp_path, "run", "--algo", "core:hbos", "--input", str(source), "--output", str(out))
        assert proc.returncode == 0, proc.stderr
        scores = np.loadtxt(out, delimiter=",", skiprows=1, usecols=0)
        assert np.isfinite(scores).all()
    assert int(np.argmax(np.loadtxt(tmp_path / "scores-csv.csv", delimiter=",", skiprows=1, usecols=0))) == 0
    for command in (("fit", "--model", "events"), ("explain",)):
        proc = _cli(tmp_path, *command, "--algo", "core:hbos", "--input", str(csv))
        assert proc.returncode == 0, (command, proc.stderr)
    records = "".join(
        json.dumps({"ts": int(t), "id": int(i), "value": v}) + "\n" for t, i, v in data.tolist()
    )
    proc = _cli(tmp_path, "stream", "--algo", "core:hbos", "--window", "50", stdin=records)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    scored = [line["score"] for line in lines if not line.get("warmup")]
    assert len(lines) == len(data) and len(scored) == len(data) - 50
    assert np.isfinite(scored).all()


@pytest.mark.service  # a real adcore serve: needs the server extra
def test_rest_detect_and_models_on_timestamps_and_huge_values(tmp_path: Path) -> None:
    rows = _events().tolist()
    huge = NASTY["plus_minus_1.7e308"].tolist()
    with running_server(tmp_path) as server, server.client() as http:
        for data in (rows, huge):
            answer = http.post("/v1/detect", json={"algorithm": "core:hbos", "data": data, "seed": 0})
            assert answer.status_code == 200, answer.text
            assert np.isfinite(answer.json()["scores"]).all()
        answer = http.post(
            "/v1/models", json={"name": "events", "algorithm": "core:hbos", "data": rows, "seed": 0}
        )
        assert answer.status_code == 201, answer.text
        scored = http.post("/v1/models/events/score", json={"data": [*rows[:5], [BIG, -BIG, 0.0]]})
        assert scored.status_code == 200, scored.text
        assert np.isfinite(scored.json()["scores"]).all()
