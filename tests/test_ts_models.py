"""Stored time-series models: ``adcore fit --algo ts:... --time --series``, then ``score`` and
``stream --model`` continue each series' state where its history ended."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adcore.cli.main import run_cli
from adcore.errors import DataError, IntegrityError, ParameterError
from adcore.services.models import load_model
from adcore.services.registry import open_store
from adcore.timeseries.detectors import build_ts_detector
from adcore.timeseries.detectors.base import score_with_warmup
from adcore.timeseries.models import TimeSeriesModel, fit_ts_model, load_ts_model
from adcore.timeseries.run import default_warmup
from adcore.timeseries.stream import open_series_stream

T0 = 1_700_000_000
HISTORY, LATER = 400, 200
SPIKE = HISTORY + 150


def _values(seed: int = 0) -> dict[str, np.ndarray]:
    """Three daily-ish series with a spike in their later part."""
    rng = np.random.default_rng(seed)
    out = {}
    for h in range(3):
        x = (
            50
            + 10 * np.sin(np.arange(HISTORY + LATER) * 2 * np.pi / 48 + h)
            + rng.standard_normal(HISTORY + LATER)
        )
        x[SPIKE] += 40
        out[f"h{h}"] = x
    return out


def _csv(path: Path, rows: list[tuple[int, str, float]]) -> Path:
    path.write_text("timestamp,host,value\n" + "".join(f"{t},{h},{v:.6f}\n" for t, h, v in rows))
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """history.csv (3 series, plus one too short to fit), later.csv (their continuation plus a new one)."""
    values = _values()
    rng = np.random.default_rng(9)
    history = [(T0 + 60 * i, h, float(x[i])) for h, x in values.items() for i in range(HISTORY)]
    history += [(T0 + 60 * i, "tiny", float(rng.standard_normal())) for i in range(30)]
    later = [
        (T0 + 60 * i, h, float(x[i])) for i in range(HISTORY, HISTORY + LATER) for h, x in values.items()
    ]
    later += [(T0 + 60 * (HISTORY + i), "new", 5 + float(rng.standard_normal())) for i in range(LATER)]
    return {
        "history": _csv(tmp_path / "history.csv", history),
        "later": _csv(tmp_path / "later.csv", later),
        "store": tmp_path / "store",
        "out": tmp_path / "scores.csv",
    }


def _fit(capfd, files, *extra: str) -> dict:
    argv = ["fit", "--algo", "ts:auto", "--time", "timestamp", "--series", "host"]
    argv += [
        "--input",
        str(files["history"]),
        "--model",
        "cpu",
        "--store",
        str(files["store"]),
        "--json",
        *extra,
    ]
    assert run_cli(argv) == 0, capfd.readouterr().err
    return json.loads(capfd.readouterr().out)


def _score(capfd, files) -> list[dict]:
    argv = ["score", "--model", "cpu", "--store", str(files["store"]), "--input", str(files["later"])]
    assert run_cli([*argv, "--output", str(files["out"])]) == 0, capfd.readouterr().err
    capfd.readouterr()
    header, *lines = files["out"].read_text().splitlines()
    names = header.split(",")
    return [dict(zip(names, line.split(","), strict=True)) for line in lines]


def test_fit_stores_one_version_with_a_detector_per_series(capfd, files):
    record = _fit(capfd, files)
    assert record["ref"] == "cpu@1" and record["algorithm"] == "ts:auto"
    assert record["read_options"] == {
        "kind": "timeseries",
        "time": "timestamp",
        "series": "host",
        "value": "value",
    }
    assert record["metrics"]["series"] == 3 and record["metrics"]["skipped_series"] == 1
    assert "tiny" in record["skipped_series"] and "fewer than the warm-up" in record["skipped_series"]["tiny"]
    with open_store(str(files["store"])) as store:
        assert [r.ref for r in store.list("cpu")] == ["cpu@1"]
    model = load_ts_model("cpu", str(files["store"]))
    assert sorted(model.detectors) == ["h0", "h1", "h2"]
    assert model.last_times["h0"] == (T0 + 60 * (HISTORY - 1)) * 10**9


def test_score_continues_each_series_as_if_never_interrupted(capfd, files):
    _fit(capfd, files)
    rows = _score(capfd, files)
    values = _values()
    for host, x in values.items():
        got = np.array([float(r["score"]) for r in rows if r["host"] == host])
        # the stored state is the detector fitted on the whole history: the same scores as
        # one detector running over history + later, the history as its warm-up
        x = np.array([float(f"{v:.6f}") for v in x])  # as the CSV files hold them
        times = (T0 + 60 * np.arange(x.size)) * 10**9
        expected = score_with_warmup(build_ts_detector("auto"), x, HISTORY, times)[HISTORY:]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
        flagged = [int(r["timestamp"]) for r in rows if r["host"] == host and r["label"] == "1"]
        assert T0 + 60 * SPIKE in flagged
    new = [float(r["score"]) for r in rows if r["host"] == "new"]
    warm = default_warmup(LATER)
    assert not any(new[:warm]) and any(new[warm:])  # a series new to the model warms up first
    again = _score(capfd, files)  # scoring never writes the state back: the same scores
    assert again == rows


def test_stream_resumes_known_series_and_warms_up_new_ones(capfd, files):
    _fit(capfd, files)
    scored = {(r["host"], int(r["timestamp"])): float(r["score"]) for r in _score(capfd, files)}
    records = [
        {"timestamp": int(r.split(",")[0]), "host": r.split(",")[1], "value": float(r.split(",")[2])}
        for r in files["later"].read_text().splitlines()[1:]
    ]
    early = {"timestamp": T0, "host": "h1", "value": 1.0}  # before the end of h1's history
    out: list[dict] = []
    letters: list[dict] = []
    with open_series_stream(
        [early, *records], out, model="cpu", store=str(files["store"]), dead_letter=letters
    ) as stream:
        stats = stream.run()
    assert stats.resumed == 3 and stats.rejected == 1 and "out of order" in json.dumps(letters)
    assert stats.warmup == 100  # only the new series warms up (the likelihood's first block)
    resumed = [r for r in out if r["host"] != "new"]
    assert not any(r.get("warmup") for r in resumed)
    for r in resumed:
        assert r["score"] == pytest.approx(scored[(r["host"], r["timestamp"])], abs=1e-12)
    assert all(r.get("warmup") for r in [r for r in out if r["host"] == "new"][:100])


def test_stream_cli_takes_the_model_and_its_fields(capfd, files, tmp_path):
    _fit(capfd, files)
    lines = files["later"].read_text().splitlines()[1:]
    source = tmp_path / "later.jsonl"
    source.write_text(
        "".join(
            json.dumps({"timestamp": int(t), "host": h, "value": float(v)}) + "\n"
            for t, h, v in (r.split(",") for r in lines)
        )
    )
    sink = tmp_path / "out.jsonl"
    argv = ["stream", "--model", "cpu", "--store", str(files["store"]), "--source", f"file://{source}"]
    assert run_cli([*argv, "--sink", f"file://{sink}", "--series", "host", "--time", "timestamp"]) == 0
    err = capfd.readouterr().err
    assert "3 series resumed from the model" in err
    out = [json.loads(line) for line in sink.read_text().splitlines()]
    assert len(out) == len(lines)
    assert run_cli([*argv, "--sink", f"file://{tmp_path / 'b.jsonl'}", "--param", "x=1"]) == 2
    assert "cannot be combined" in capfd.readouterr().err


def test_a_time_series_artifact_is_checked_and_pickles_round_trip(capfd, files):
    _fit(capfd, files)
    model = load_ts_model("cpu", str(files["store"]))
    copy = TimeSeriesModel.from_bytes(model.to_bytes())
    x = _values()["h2"][HISTORY:]
    np.testing.assert_array_equal(copy.detectors["h2"].score_series(x), model.detectors["h2"].score_series(x))
    artifact = next((files["store"] / "artifacts" / "cpu").iterdir())
    data = artifact.read_bytes()
    artifact.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        load_ts_model("cpu", str(files["store"]))
    argv = ["score", "--model", "cpu", "--store", str(files["store"]), "--input", str(files["later"])]
    assert run_cli([*argv, "--output", str(files["out"])]) == 2
    assert "refusing to load it" in capfd.readouterr().err


def test_tabular_paths_refuse_a_time_series_model_and_back(capfd, files, tmp_path):
    _fit(capfd, files)
    with pytest.raises(ParameterError, match="is a time-series model"):
        load_model("cpu", str(files["store"]))
    table = tmp_path / "table.csv"
    table.write_text("a,b\n" + "".join(f"{i % 7},{i % 5}\n" for i in range(50)))
    assert (
        run_cli(["fit", "-a", "core:hbos", "-i", str(table), "-m", "tab", "--store", str(files["store"])])
        == 0
    )
    capfd.readouterr()
    with pytest.raises(ParameterError, match="is a tabular model"):
        load_ts_model("tab", str(files["store"]))
    argv = ["score", "-m", "tab", "--store", str(files["store"]), "-i", str(table), "--time", "a"]
    assert run_cli([*argv, "--output", str(tmp_path / "o.csv")]) == 2
    assert "tabular one" in capfd.readouterr().err


def test_scoring_records_inside_the_history_is_refused(capfd, files):
    _fit(capfd, files)
    argv = ["score", "--model", "cpu", "--store", str(files["store"]), "--input", str(files["history"])]
    assert run_cli([*argv, "--output", str(files["out"])]) == 2
    err = capfd.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "before the end of the model's history" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--contamination", "0.1"], "--contamination cannot be combined"),
        (["--param", "warmup=10"], "whole history"),
        (["--threshold", "mad"], "give a number"),
    ],
)
def test_bad_ts_fit_options_are_one_line_errors(capfd, files, extra, message):
    argv = [
        "fit",
        "--algo",
        "ts:auto",
        "--time",
        "timestamp",
        "--input",
        str(files["history"]),
        "--model",
        "m",
    ]
    assert run_cli([*argv, "--store", str(files["store"]), *extra]) == 2
    err = capfd.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_fit_needs_one_series_long_enough():
    times = (T0 + 60 * np.arange(10)) * 10**9
    with pytest.raises(DataError, match="no series could be fitted"):
        fit_ts_model(
            "ts:auto", np.arange(10.0), times, None, time_column="t", series_column=None, value_column="v"
        )
