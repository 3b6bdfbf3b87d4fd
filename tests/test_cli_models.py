"""``adcore fit``, ``adcore score`` and ``adcore models`` as a user meets them (in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adcore.cli.main import run_cli


@pytest.fixture(autouse=True)
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "store"
    monkeypatch.setenv("ADCORE_STORE", str(path))
    return path


def cli(capfd, *args: str) -> tuple[int, str, str]:
    code = run_cli(list(args))
    out, err = capfd.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def stored(capfd) -> list[str]:
    code, out, err = cli(capfd, "models", "--json")
    assert code == 0, err
    return [r["ref"] for r in json.loads(out)]


def test_fit_prints_the_reference_and_score_equals_run(capfd, csv_file, tmp_path):
    code, out, err = cli(
        capfd, "fit", "--algo", "core:hbos", "-i", str(csv_file), "--model", "payments", "--seed", "2"
    )
    assert code == 0, err
    assert out.strip() == "payments@1" and "stored payments@1" in err
    code, out, err = cli(
        capfd,
        "score",
        "--model",
        "payments",
        "-i",
        str(csv_file),
        "-o",
        str(tmp_path / "s.csv"),
        "--chunk-size",
        "9",
    )
    assert code == 0, err
    assert "payments@1: 20 of 200 rows anomalous" in err
    code, _, err = cli(
        capfd, "run", "--algo", "core:hbos", "-i", str(csv_file), "-o", str(tmp_path / "r.csv"), "--seed", "2"
    )
    assert code == 0, err
    assert (tmp_path / "s.csv").read_bytes() == (tmp_path / "r.csv").read_bytes()


def test_json_outputs(capfd, csv_file):
    code, out, err = cli(
        capfd, "fit", "-a", "core:mad", "-i", str(csv_file), "-m", "j", "--param", "aggregate=max", "--json"
    )
    assert code == 0, err
    record = json.loads(out)
    assert (
        record["ref"] == "j@1"
        and record["params"]["aggregate"] == "max"
        and record["feature_names"] == ["a", "b", "c"]
    )
    code, out, err = cli(capfd, "score", "-m", "j@1", "-i", str(csv_file), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["model"] == "j@1" and summary["n_rows"] == 200 and summary["output"] is None
    assert {a["index"] for a in summary["top_anomalies"][:5]} == {0, 1, 2, 3, 4}
    code, out, err = cli(capfd, "models", "show", "j", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["ref"] == "j@1" and len(shown["sha256"]) == 64 and shown["store"]


def test_models_list_show_and_rm(capfd, csv_file):
    for _ in range(3):
        assert cli(capfd, "fit", "-a", "core:hbos", "-i", str(csv_file), "-m", "m")[0] == 0
    code, out, _ = cli(capfd, "models")
    assert code == 0 and "m@3*" in out and "3 model versions" in out
    code, out, _ = cli(capfd, "models", "show", "m@2")
    assert code == 0 and out.startswith("m@2  core:hbos") and "a, b, c" in out
    code, out, _ = cli(capfd, "models", "rm", "m@2")
    assert code == 0 and out.strip() == "removed m@2"
    assert stored(capfd) == ["m@1", "m@3"]
    code, _, err = cli(capfd, "models", "rm", "m")
    assert_one_line_error(code, err, "pass --all")
    code, _, err = cli(capfd, "models", "rm", "m", "--all")
    assert_one_line_error(code, err, "without confirmation: add --yes")
    code, _, err = cli(capfd, "models", "rm", "m@1", "--all", "--yes")
    assert_one_line_error(code, err, "--all removes every version")
    assert stored(capfd) == ["m@1", "m@3"]
    code, out, _ = cli(capfd, "models", "rm", "m", "--all", "--yes")
    assert code == 0 and out.split() == ["removed", "m@1", "removed", "m@3"]
    assert stored(capfd) == []
    code, _, err = cli(capfd, "models", "rm", "m@1")
    assert_one_line_error(code, err, "no model named 'm'")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["fit", "-a", "core:nope", "-m", "x"], "unknown algorithm"),
        (["fit", "-a", "core:hbos", "-m", "x", "--param", "n_bins=-3"], "n_bins"),
        (["fit", "-a", "core:hbos", "-m", "x", "--contamination", "0.9"], "contamination"),
        (["fit", "-a", "core:hbos", "-m", "bad name"], "invalid model name"),
        (
            ["fit", "-a", "core:hbos", "-m", "x", "--store", "ftp://host/x"],
            "no model-store backend for 'ftp'",
        ),
        (["fit", "-a", "core:hbos", "-m", "x", "--store", "postgresql://u@127.0.0.1:1/db"], "?artifacts="),
        (["fit", "-a", "core:hbos", "-m", "x", "--columns", "a,zz"], "unknown column 'zz'"),
        (["score", "-m", "nothing"], "no model named 'nothing'"),
        (["score", "-m", "x@0"], "must be a number >= 1"),
        (["score", "-m", "x", "--chunk-size", "0"], "chunk-size"),
        (["models", "show", "nothing@3"], "no model named 'nothing'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_stores_nothing(capfd, csv_file, args, needle):
    import importlib.util

    if needle == "?artifacts=" and importlib.util.find_spec("psycopg") is None:
        needle = "pip install psycopg"  # the core-alone env: the missing driver is named first
    code, _, err = cli(capfd, *args, "-i", str(csv_file)) if args[0] != "models" else cli(capfd, *args)
    assert_one_line_error(code, err, needle)
    assert stored(capfd) == []


def test_bad_data_for_fit_and_score(capfd, csv_file, tmp_path):
    missing = tmp_path / "missing.csv"
    code, _, err = cli(capfd, "fit", "-a", "core:hbos", "-i", str(missing), "-m", "x")
    assert_one_line_error(code, err, "file not found")
    assert stored(capfd) == []
    assert cli(capfd, "fit", "-a", "core:hbos", "-i", str(csv_file), "-m", "x")[0] == 0
    code, _, err = cli(capfd, "score", "-m", "x", "-i", str(csv_file), "-o", str(tmp_path / "no" / "dir.csv"))
    assert_one_line_error(code, err, "does not exist")
    code, _, err = cli(capfd, "score", "-m", "x", "-i", str(csv_file), "--nan", "median")
    assert code == 2 and "median" in err
    narrow = tmp_path / "narrow.csv"
    narrow.write_text("a,b\n1,2\n3,4\n")
    code, _, err = cli(capfd, "score", "-m", "x", "-i", str(narrow), "-o", str(tmp_path / "o.csv"))
    assert_one_line_error(code, err, "trained on 3 features, the input has 2 (missing 'c')")
    assert not (tmp_path / "o.csv").exists()


def test_group_options_reach_the_subcommands(capfd, csv_file, tmp_path, monkeypatch):
    other = tmp_path / "other-store"
    assert cli(capfd, "fit", "-a", "core:hbos", "-i", str(csv_file), "-m", "g", "--store", str(other))[0] == 0
    assert stored(capfd) == []  # the default ($ADCORE_STORE) store is untouched
    code, out, err = cli(capfd, "models", "--store", str(other), "--json", "show", "g")
    assert code == 0, err
    assert json.loads(out)["ref"] == "g@1"
    code, out, err = cli(capfd, "models", "--store", str(other), "rm", "g@1")
    assert code == 0 and out.strip() == "removed g@1", err
    code, out, _ = cli(capfd, "models", "--store", str(other), "--json")
    assert json.loads(out) == []


def test_score_writes_rows_to_stdout_like_run(capfd, csv_file, tmp_path):
    code, _, err = cli(capfd, "fit", "-a", "core:hbos", "-i", str(csv_file), "-m", "s", "--seed", "3")
    assert code == 0 and "seed 3 (repeat with --seed 3)" in err, err
    code, rows, err = cli(capfd, "score", "-m", "s", "-i", str(csv_file), "--chunk-size", "7")
    assert code == 0, err
    assert rows.splitlines()[0] == "score,label" and len(rows.splitlines()) == 201
    assert "s@1: 20 of 200 rows anomalous" in err and "written to" not in err
    code, rows_jsonl, err = cli(capfd, "score", "-m", "s", "-i", str(csv_file), "-o", "-", "-f", "jsonl")
    assert code == 0, err
    assert [json.loads(line)["label"] for line in rows_jsonl.splitlines()] == [
        int(line.split(",")[1]) for line in rows.splitlines()[1:]
    ]
    code, _, err = cli(capfd, "score", "-m", "s", "-i", str(csv_file), "-o", "-", "--json")
    assert_one_line_error(code, err, "--json prints the summary on stdout")
    wrong = str(tmp_path / "x.csv")
    code, _, err = cli(capfd, "score", "-m", "s", "-i", str(csv_file), "-o", wrong, "-f", "npy")
    assert_one_line_error(code, err, "--format npy disagrees")


def test_one_model_version_is_singular(capfd, csv_file):
    assert cli(capfd, "fit", "-a", "core:hbos", "-i", str(csv_file), "-m", "only")[0] == 0
    code, out, _ = cli(capfd, "models")
    assert code == 0 and "1 model version in" in out
    code, out, _ = cli(capfd, "models", "show", "only")
    assert code == 0 and "200 rows x 3 features" in out and "seed" in out
