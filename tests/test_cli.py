"""The CLI as a user meets it: exit codes, one-line errors, outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from adcore.cli.main import run_cli


def cli(capfd, *args: str) -> tuple[int, str, str]:
    code = run_cli(list(args))
    out, err = capfd.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_version(capfd):
    import adcore

    code, out, _ = cli(capfd, "--version")
    assert code == 0 and out.strip() == f"adcore {adcore.__version__}"


def test_run_writes_one_row_per_input_row(capfd, csv_file, tmp_path):
    out_path = tmp_path / "scores.csv"
    code, _out, err = cli(
        capfd, "run", "--algo", "core:hbos", "--input", str(csv_file), "--output", str(out_path)
    )
    assert code == 0, err
    lines = out_path.read_text().splitlines()
    assert lines[0] == "score,label" and len(lines) == 201
    assert "20 of 200 rows anomalous" in err


def test_run_json_summary(capfd, csv_file):
    code, out, err = cli(
        capfd, "run", "-a", "mad", "-i", str(csv_file), "--json", "--contamination", "0.05", "--seed", "1"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["algorithm"] == "core:mad" and summary["n_samples"] == 200 and summary["n_anomalies"] == 10
    assert {a["index"] for a in summary["top_anomalies"][:5]} == {0, 1, 2, 3, 4}


def test_run_params_are_typed_by_schema(capfd, csv_file):
    code, out, err = cli(
        capfd, "run", "-a", "core:hbos", "-i", str(csv_file), "--param", "n_bins=4", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["params"]["n_bins"] == 4


def test_threshold_methods_from_cli(capfd, csv_file):
    code, out, err = cli(
        capfd, "run", "-a", "core:mad", "-i", str(csv_file), "--threshold", "mad:3", "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["metadata"]["threshold_method"] == "mad:3"
    assert 5 <= summary["n_anomalies"] < 20


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--algo", "hbso"], ["unknown algorithm 'hbso'", "did you mean"]),
        (["--contamination", "0.7"], ["contamination must be in (0, 0.5]"]),
        (["--contamination", "0"], ["contamination must be in (0, 0.5]"]),
        (["--param", "nbins=3"], ["has no parameter 'nbins'", "n_bins"]),
        (["--param", "n_bins=many"], ["n_bins"]),
        (["--param", "n_bins"], ["KEY=VALUE"]),
        (["--threshold", "median"], ["unknown threshold method"]),
        (["--nan", "zero"], ["zero"]),
    ],
)
def test_bad_options_exit_2_with_one_line(capfd, csv_file, args, needles):
    base = ["run", "--algo", "core:hbos", "--input", str(csv_file)]
    if args[0] == "--algo":
        base = ["run", "--input", str(csv_file)]
    code, _, err = cli(capfd, *base, *args)
    assert_one_line_error(code, err, *needles)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("name", "content", "needles"),
    [
        ("missing.csv", None, ["missing.csv", "file not found"]),
        ("empty.csv", "", ["empty.csv", "empty"]),
        ("header.csv", "a,b\n", ["header.csv"]),
        ("one.csv", "a,b\n1,2\n", ["one.csv", "at least 2 rows"]),
        ("text.csv", "a,b\n1,2\n3,oops\n4,5\n", ["text.csv", "line 3", "'b'"]),
        ("ragged.csv", "a,b\n1,2\n3\n4,5\n", ["ragged.csv", "line 3"]),
        ("inf.csv", "a,b\n1,2\n3,inf\n4,5\n", ["inf.csv", "line 3"]),
        ("nan.csv", "a,b\n1,2\n3,\n4,5\n", ["nan.csv", "line 3", "--nan"]),
        ("data.xlsx", "a,b\n1,2\n", ["data.xlsx"]),
    ],
)
def test_bad_input_files_exit_2(capfd, tmp_path, name, content, needles):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    code, _, err = cli(capfd, "run", "--algo", "core:hbos", "--input", str(path))
    assert_one_line_error(code, err, *needles)


def test_unwritable_output_is_refused_before_any_work(capfd, csv_file, tmp_path):
    code, _, err = cli(
        capfd, "run", "-a", "hbos", "-i", str(csv_file), "-o", str(tmp_path / "no" / "such" / "dir" / "s.csv")
    )
    assert_one_line_error(code, err, "s.csv")
    code, _, err = cli(capfd, "run", "-a", "hbos", "-i", str(csv_file), "-o", str(tmp_path / "s.unknownext"))
    assert_one_line_error(code, err, "s.unknownext")
    code, _, err = cli(capfd, "run", "-a", "hbos", "-i", str(csv_file), "-o", str(tmp_path))
    assert_one_line_error(code, err)


def test_nan_policies_keep_rows_aligned(capfd, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2))
    lines = ["a,b"] + [f"{x:.5f},{y:.5f}" for x, y in X]
    lines[10] = "1.0,"  # data row 9 has a missing value
    src = write(tmp_path / "gaps.csv", "\n".join(lines) + "\n")
    for policy in ("drop", "median"):
        out_path = tmp_path / f"{policy}.csv"
        code, _, err = cli(capfd, "run", "-a", "hbos", "-i", str(src), "-o", str(out_path), "--nan", policy)
        assert code == 0, err
        rows = out_path.read_text().splitlines()
        assert len(rows) == 51
        score, label = rows[10].split(",")
        if policy == "drop":
            assert score == "" and label == "-1"  # no score, as the README says: not "nan"
        else:
            assert float(score) > 0 and label in ("0", "1")


def test_columns_select_features_and_pass_the_rest_through(capfd, tmp_path):
    rng = np.random.default_rng(0)
    rows = ["id,a,b,city"] + [f"r{i},{rng.normal():.4f},{rng.normal():.4f},X" for i in range(30)]
    src = write(tmp_path / "mixed.csv", "\n".join(rows) + "\n")
    code, _, err = cli(capfd, "run", "-a", "hbos", "-i", str(src))
    assert_one_line_error(code, err, "'id'", "--columns")
    out_path = tmp_path / "out.csv"
    code, _, err = cli(capfd, "run", "-a", "hbos", "-i", str(src), "--columns", "a,b", "-o", str(out_path))
    assert code == 0, err
    out = out_path.read_text().splitlines()
    assert out[0] == "id,city,score,label" and out[1].startswith("r0,X,")


@pytest.mark.parametrize("ext", ["csv", "parquet", "jsonl", "json", "npy"])
def test_every_output_format_round_trips(capfd, csv_file, tmp_path, ext):
    out_path = tmp_path / f"scores.{ext}"
    code, _out, err = cli(capfd, "run", "-a", "hbos", "-i", str(csv_file), "-o", str(out_path), "--json")
    assert code == 0, err
    expected_labels = None
    if ext == "csv":
        data = np.genfromtxt(out_path, delimiter=",", names=True)
        scores, labels = data["score"], data["label"]
    elif ext == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(out_path)
        scores, labels = np.asarray(table["score"]), np.asarray(table["label"])
    elif ext == "jsonl":
        records = [json.loads(line) for line in out_path.read_text().splitlines()]
        scores = np.array([r["score"] for r in records])
        labels = np.array([r["label"] for r in records])
    elif ext == "json":
        records = json.loads(out_path.read_text())
        scores = np.array([r["score"] for r in records])
        labels = np.array([r["label"] for r in records])
    else:
        arr = np.load(out_path)
        scores, labels = arr["score"], arr["label"]
    assert scores.shape == (200,) and labels.shape == (200,)
    import adcore
    from adcore.data import read_dataset

    expected = adcore.detect(read_dataset(csv_file), algo="core:hbos")
    np.testing.assert_allclose(scores, expected.scores, rtol=1e-12 if ext != "csv" else 1e-9)
    expected_labels = expected.labels
    np.testing.assert_array_equal(labels, expected_labels)


@pytest.mark.parametrize("ext", ["npy", "npz", "json", "jsonl", "parquet", "tsv"])
def test_every_input_format(capfd, tmp_path, ext):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 3))
    path = tmp_path / f"in.{ext}"
    if ext == "npy":
        np.save(path, X)
    elif ext == "npz":
        np.savez(path, X=X, y=np.zeros(40))
    elif ext == "json":
        path.write_text(json.dumps([dict(zip("abc", map(float, row), strict=True)) for row in X]))
    elif ext == "jsonl":
        path.write_text("\n".join(json.dumps(list(map(float, row))) for row in X) + "\n")
    elif ext == "tsv":
        path.write_text("a\tb\tc\n" + "\n".join("\t".join(repr(float(v)) for v in row) for row in X) + "\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2]}), path)
    code, out, err = cli(capfd, "run", "-a", "mahalanobis", "-i", str(path), "--json")
    assert code == 0, err
    import adcore

    assert json.loads(out)["score_max"] == pytest.approx(
        adcore.detect(X, algo="core:mahalanobis").scores.max()
    )


def test_algos_and_plugins_commands(capfd):
    code, out, _ = cli(capfd, "algos", "--json")
    rows = json.loads(out)
    assert code == 0 and {"name", "plugin", "summary"} <= set(rows[0])
    assert "core:hbos" in {r["name"] for r in rows}
    code, out, _ = cli(capfd, "algos", "show", "core:hbos", "--json")
    info = json.loads(out)
    assert code == 0 and info["schema"]["properties"]["n_bins"]["default"] == 10
    code, out, _ = cli(capfd, "algos", "show", "core:hbos")
    assert code == 0 and "n_bins" in out and "Equal-width bins" in out
    code, out, _ = cli(capfd, "plugins", "--json")
    assert code == 0 and not any(p["builtin"] for p in json.loads(out))  # built-ins behind --all
    code, out, _ = cli(capfd, "plugins", "--all", "--json")
    assert code == 0 and any(p["name"] == "core" and p["ok"] for p in json.loads(out))
    code, _, err = cli(capfd, "algos", "show", "nope")
    assert_one_line_error(code, err, "unknown algorithm 'nope'")


def test_missing_required_option_is_usage_error(capfd):
    code, _, err = cli(capfd, "run", "--algo", "hbos")
    assert_one_line_error(code, err, "--input")


# --------------------------------------------------------------------------- where the rows go


def run_subprocess(*args: str, stdout=None, stderr=None, shell: str | None = None):
    """``adcore ARGS`` in a fresh interpreter (or a bash pipeline using ``adcore``), bytes out."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    env["PY"] = sys.executable
    command = (
        ["bash", "-o", "pipefail", "-c", 'adcore() { "$PY" -m adcore.cli.main "$@"; }\n' + shell]
        if shell is not None
        else [sys.executable, "-m", "adcore.cli.main", *args]
    )
    return subprocess.run(
        command,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=stderr if stderr is not None else subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=120,
    )


def test_without_output_the_rows_go_to_stdout_and_the_summary_to_stderr(capfd, csv_file, tmp_path):
    code, out, err = cli(capfd, "run", "-a", "core:hbos", "-i", str(csv_file), "--seed", "1")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "score,label" and len(lines) == 201
    assert "20 of 200 rows anomalous" in err and "score,label" not in err
    out_path = tmp_path / "s.csv"
    code, _, err = cli(capfd, "run", "-a", "hbos", "-i", str(csv_file), "-o", str(out_path), "--seed", "1")
    assert code == 0, err
    assert out_path.read_text() == out  # stdout carries exactly what the file would
    code, dash, err = cli(capfd, "run", "-a", "core:hbos", "-i", str(csv_file), "-o", "-", "--seed", "1")
    assert code == 0 and dash == out, err


@pytest.mark.parametrize("fmt", ["jsonl", "json", "tsv"])
def test_format_chooses_the_stdout_format(capfd, csv_file, fmt):
    code, out, err = cli(capfd, "run", "-a", "core:hbos", "-i", str(csv_file), "--format", fmt)
    assert code == 0, err
    if fmt == "tsv":
        assert out.splitlines()[0] == "score\tlabel"
        return
    records = [json.loads(line) for line in out.splitlines()] if fmt == "jsonl" else json.loads(out)
    assert len(records) == 200 and set(records[0]) == {"score", "label"}


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["-o", "-", "--json"], ["--json prints the summary on stdout", "--output scores.csv"]),
        (["--json", "--format", "csv"], ["--format", "--output FILE"]),
        (["-o", "s.csv", "--format", "json"], ["--format json disagrees", "s.csv"]),
        (["--format", "xml"], ["xml"]),
    ],
)
def test_conflicting_output_options_exit_2(capfd, csv_file, tmp_path, monkeypatch, args, needles):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capfd, "run", "-a", "core:hbos", "-i", str(csv_file), *args)
    assert_one_line_error(code, err, *needles)
    assert out == "" and not (tmp_path / "s.csv").exists()


def test_format_names_the_format_of_a_file_without_extension(capfd, csv_file, tmp_path):
    out_path = tmp_path / "scores"
    code, _, err = cli(capfd, "run", "-a", "hbos", "-i", str(csv_file), "-o", str(out_path), "-f", "jsonl")
    assert code == 0, err
    assert len([json.loads(line) for line in out_path.read_text().splitlines()]) == 200
    assert f"scores written to {out_path}" in err


def test_json_alone_prints_the_summary_instead_of_the_rows(capfd, csv_file):
    code, out, err = cli(capfd, "run", "-a", "core:hbos", "-i", str(csv_file), "--json")
    assert code == 0, err
    summary = json.loads(out)  # stdout is the summary and nothing else
    assert summary["output"] is None and summary["n_samples"] == 200


def test_binary_formats_go_to_a_pipe_but_not_to_a_terminal(csv_file):
    import io
    import os

    proc = run_subprocess("run", "-a", "core:hbos", "-i", str(csv_file), "-f", "npy")
    assert proc.returncode == 0, proc.stderr
    assert np.load(io.BytesIO(proc.stdout)).shape == (200,)
    leader, follower = os.openpty()
    try:
        proc = run_subprocess("run", "-a", "core:hbos", "-i", str(csv_file), "-f", "npy", stdout=follower)
    finally:
        os.close(follower)
        os.close(leader)
    assert proc.returncode == 2
    assert proc.stderr.decode().startswith("error: --format npy is binary and stdout is a terminal")


def test_a_reader_that_stops_early_is_not_an_error(tmp_path):
    rng = np.random.default_rng(0)
    big = tmp_path / "big.csv"  # an output larger than a pipe's buffer, so the writer sees the pipe close
    big.write_text("a,b\n" + "\n".join(f"{x:.6f},{y:.6f}" for x, y in rng.normal(size=(40_000, 2))) + "\n")
    proc = run_subprocess(shell=f"adcore run -a core:hbos -i {big} --seed 1 | head -2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().splitlines()[0] == "score,label"
    err = proc.stderr.decode()
    assert "Traceback" not in err and "error" not in err and " of 40000 rows anomalous" in err


def test_nan_drop_leaves_the_score_empty_in_every_text_format(capfd, tmp_path):
    src = write(tmp_path / "gaps.csv", "a,b\n1,2\n2,\n3,4\n4,5\n5,7\n")
    code, out, err = cli(capfd, "run", "-a", "core:hbos", "-i", str(src), "--nan", "drop")
    assert code == 0, err
    assert out.splitlines()[2] == ",-1"
    code, out, err = cli(capfd, "run", "-a", "core:hbos", "-i", str(src), "--nan", "drop", "-f", "jsonl")
    assert code == 0, err
    assert json.loads(out.splitlines()[1]) == {"score": None, "label": -1}


# --------------------------------------------------------------------------- what the summary says


def test_the_summary_gives_the_seed_that_repeats_the_run(capfd, csv_file):
    code, out, err = cli(capfd, "run", "-a", "core:hbos", "-i", str(csv_file), "--seed", "7", "--json")
    assert code == 0, err
    assert json.loads(out)["seed"] == 7
    code, _, err = cli(capfd, "run", "-a", "core:hbos", "-i", str(csv_file), "--seed", "7")
    assert code == 0 and "seed 7 (repeat with --seed 7)" in err, err


def test_a_drawn_seed_is_reported_and_repeats_the_scores(capfd, csv_file, tmp_path):
    pytest.importorskip("sklearn")
    first = tmp_path / "first.csv"
    code, _, err = cli(capfd, "run", "-a", "sklearn:iforest", "-i", str(csv_file), "-o", str(first))
    assert code == 0, err
    import re

    match = re.search(r"seed (\d+) \(repeat with --seed \1\)", err)
    assert match, err
    again = tmp_path / "again.csv"
    code, _, err = cli(
        capfd, "run", "-a", "sklearn:iforest", "-i", str(csv_file), "-o", str(again), "--seed", match.group(1)
    )
    assert code == 0, err
    assert again.read_bytes() == first.read_bytes()


def test_threshold_and_scores_read_in_one_precision(capfd, tmp_path):
    # a tiny threshold beside scores near 8.8: printed in the scores' precision, and not as a bare 0
    import re

    src = write(tmp_path / "flat.csv", "a\n" + "\n".join(["0"] * 20 + ["1"] * 2) + "\n")
    code, _, err = cli(capfd, "run", "-a", "core:mad", "-i", str(src), "--threshold", "fixed:3e-17")
    assert code == 0, err
    assert re.search(r"threshold 0\.0{5} \(3e-17\), ", err), err
    assert re.search(r"│ +8\.7768\d │", err), err  # the scores: the same five decimals


CARDIO_FOR_PIPES = Path(__file__).resolve().parents[1] / "examples" / "cardio.csv"


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--algo", "core:hbos", "--input", str(CARDIO_FOR_PIPES), "--output", "-"],
        ["algos"],
    ],
)
def test_a_reader_that_closes_stderr_or_stdout_early_is_no_error(args):
    """`adcore run ... 2>&1 | head -1`: rich answered the closed pipe with SystemExit(1), which
    reads as a failure ("this is a bug"); a reader that stops early is a quiet exit 0."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "adcore.cli.main", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stderr.read(8)
    proc.stderr.close()
    proc.stdout.read(8)
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0


def test_the_cli_turns_numpys_huge_pages_off_unless_the_user_chose():
    # Set before numpy's import: fresh large arrays stall on kernel compaction otherwise
    # (adcore run on 2,000,000 rows: 1 s of 3.2 s). The user's own setting wins.
    probe = (
        "import os, sys\n"
        "from adcore.cli.main import main\n"
        "sys.argv = ['adcore', '--version']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(os.environ['NUMPY_MADVISE_HUGEPAGE'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    for given, expected in ((None, "0"), ("1", "1")):
        run_env = env if given is None else {**env, "NUMPY_MADVISE_HUGEPAGE": given}
        out = subprocess.run(
            [sys.executable, "-c", probe], env=run_env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip().splitlines()[-1] == expected
