"""Issue 15, CLI and data input: what a user can type or feed in is refused clearly (exit 2 / 4xx).

Every case runs the real CLI in a subprocess (``python -m adcore.cli.main``) on real files, or
a real ``adcore serve`` on loopback; nothing is mocked. Items: D1 (an output that is the input),
D3 (full-match name checks), C4 (model versions), K2 (what a CSV number is), K3 (empty list
items and values), K6 (stream outputs that are the source), K7 (reads never create a store).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from server_harness import running_server

PY = sys.executable


def adcore(
    tmp: Path, *args: str, autoload: bool = False, timeout: float = 120
) -> subprocess.CompletedProcess:
    """``adcore ARGS`` as a user runs it, in ``tmp``, with its own ADCORE_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    env["ADCORE_HOME"] = str(tmp / "home")
    if not autoload:
        env["ADCORE_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return subprocess.run(
        [PY, "-m", "adcore.cli.main", *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def refused(result: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit 2 with one line on stderr naming the problem (never exit 1, never a traceback)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """``x.csv`` in the working directory: 60 rows x 2 features."""
    rng = np.random.default_rng(1)
    rows = ["a,b", *(f"{u:.4f},{v:.4f}" for u, v in rng.normal(size=(60, 2)))]
    path = tmp_path / "x.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


# ------------------------------------------------------------------------- D1
def _output_names(tmp: Path) -> list[str]:
    """Every way of naming x.csv as the output: itself, ./, absolute, ../, a symlink, a hard link."""
    os.symlink("x.csv", tmp / "soft.csv")
    os.link(tmp / "x.csv", tmp / "hard.csv")
    return ["x.csv", "./x.csv", str(tmp / "x.csv"), f"../{tmp.name}/x.csv", "soft.csv", "hard.csv"]


def test_d1_run_refuses_an_output_that_is_the_input(tmp_path, data):
    before = data.read_bytes()
    for output in _output_names(tmp_path):
        result = adcore(tmp_path, "run", "--algo", "hbos", "-i", "x.csv", "-o", output, "--seed", "1")
        refused(result, "is the input file", output)
        assert data.read_bytes() == before, output
        assert os.path.islink(tmp_path / "soft.csv")
    ok = adcore(tmp_path, "run", "--algo", "hbos", "-i", "x.csv", "-o", "scores.csv", "--seed", "1")
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "scores.csv").read_text().startswith("score,label")


def test_d1_score_refuses_an_output_that_is_the_input(tmp_path, data):
    store = str(tmp_path / "store")
    fitted = adcore(tmp_path, "fit", "-a", "hbos", "-m", "m", "-i", "x.csv", "--store", store)
    assert fitted.returncode == 0, fitted.stderr
    before = data.read_bytes()
    for output in _output_names(tmp_path):
        result = adcore(tmp_path, "score", "-m", "m", "-i", "x.csv", "-o", output, "--store", store)
        refused(result, "is the input file")
        assert data.read_bytes() == before, output
    reverse = adcore(tmp_path, "score", "-m", "m", "-i", "soft.csv", "-o", "x.csv", "--store", store)
    refused(reverse, "is the input file")
    assert data.read_bytes() == before


# ------------------------------------------------------------------------- D3
def test_d3_a_name_with_a_trailing_newline_is_refused(tmp_path, data):
    store = str(tmp_path / "store")
    result = adcore(tmp_path, "fit", "-a", "hbos", "--model", "trail\n", "-i", "x.csv", "--store", store)
    refused(result, "invalid model name")
    assert (
        adcore(tmp_path, "fit", "-a", "hbos", "-m", "trail", "-i", "x.csv", "--store", store).returncode == 0
    )
    removed = adcore(tmp_path, "models", "rm", "trail\n", "--all", "--yes", "--store", store)
    refused(removed, "invalid model name")
    for ref in ("trail@1\n", " trail@1", "trail\n@1"):
        refused(adcore(tmp_path, "models", "rm", ref, "--store", store), "invalid model")
    listed = adcore(tmp_path, "models", "--json", "--store", store)
    assert [r["ref"] for r in json.loads(listed.stdout)] == ["trail@1"]


def test_d3_the_python_api_uses_full_matches():
    from adcore.errors import ParameterError
    from adcore.services.registry import check_model_name, parse_model_ref

    for bad in ("trail\n", "trail\n@1", "trail@1\n", "a\nb"):
        with pytest.raises(ParameterError):
            parse_model_ref(bad)
    with pytest.raises(ParameterError):
        check_model_name("trail\n")


# ------------------------------------------------------------------------- C4
BAD_REFS = [
    "m@²",
    "m@\u0663",
    "m@\uff11",
    "m@99999999999999999999999",
    "m@9223372036854775808",
    "m@0",
    "m@-1",
    "m@1_0",
]


def test_c4_bad_versions_are_refused_by_the_cli(tmp_path, data):
    store = str(tmp_path / "store")
    assert adcore(tmp_path, "fit", "-a", "hbos", "-m", "m", "-i", "x.csv", "--store", store).returncode == 0
    for ref in BAD_REFS:
        refused(
            adcore(tmp_path, "score", "-m", ref, "-i", "x.csv", "--store", store), "invalid model reference"
        )
        refused(adcore(tmp_path, "models", "show", ref, "--store", store), "invalid model reference")
        refused(adcore(tmp_path, "models", "rm", ref, "--store", store), "invalid model reference")
    largest = adcore(tmp_path, "models", "show", "m@9223372036854775807", "--store", store)
    refused(largest, "has no version 9223372036854775807")


@pytest.mark.service
def test_c4_bad_versions_are_refused_with_postgresql(tmp_path, data, postgres_store_url):
    fitted = adcore(tmp_path, "fit", "-a", "hbos", "-m", "m", "-i", "x.csv", "--store", postgres_store_url)
    assert fitted.returncode == 0, fitted.stderr
    for ref in ("m@99999999999999999999999", "m@²"):
        result = adcore(tmp_path, "score", "-m", ref, "-i", "x.csv", "--store", postgres_store_url)
        refused(result, "invalid model reference")
    refused(
        adcore(tmp_path, "models", "show", "m@9223372036854775807", "--store", postgres_store_url),
        "has no version",
    )


@pytest.mark.service  # a real adcore serve: needs the server extra
def test_c4_d3_bad_references_are_4xx_on_the_server(tmp_path):
    rows = np.random.default_rng(0).normal(size=(40, 2)).tolist()
    with running_server(tmp_path / "srv") as server, server.client() as client:
        made = client.post("/v1/models", json={"name": "trail", "data": rows, "algorithm": "core:hbos"})
        assert made.status_code == 201, made.text
        for ref in ("trail@%C2%B2", "trail@99999999999999999999999", "trail@9223372036854775808"):
            for path in (f"/v1/models/{ref}/score", f"/v1/models/{ref}/explain"):
                answer = client.post(path, json={"data": rows[:3]})
                assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text)
            gone = client.delete(f"/v1/models/{ref}")
            assert 400 <= gone.status_code < 500, (ref, gone.status_code, gone.text)
        gone = client.delete("/v1/models/trail%0A")
        assert 400 <= gone.status_code < 500, gone.text
        assert [m["ref"] for m in client.get("/v1/models").json()["models"]] == ["trail@1"]


# ------------------------------------------------------------------------- K2
@pytest.mark.parametrize(
    "cell",
    [b"1_000", b"1\x00", b"\x001", "\u0663".encode(), "\uff11".encode(), "1\u0660".encode(), b"1\x002"],
    ids=["underscore", "nul-after", "nul-before", "arabic-indic", "full-width", "mixed", "nul-inside"],
)
@pytest.mark.parametrize("passthrough", [False, True], ids=["features-only", "with-id-column"])
def test_k2_only_ascii_numbers_are_numbers(tmp_path, cell, passthrough):
    head, extra = (b"id,a,b\n", b"r,") if passthrough else (b"a,b\n", b"")
    body = b"".join(extra + f"{i}.5,{i % 7}\n".encode() for i in range(40))
    (tmp_path / "k.csv").write_bytes(head + body + extra + cell + b",2\n" + body)
    args = ["run", "-a", "hbos", "-i", "k.csv", "--json"] + (["--columns", "a,b"] if passthrough else [])
    refused(adcore(tmp_path, *args), "line 42", "column 'a'", "is not a number")


def test_k2_what_csv_users_mean_by_a_number_still_reads(tmp_path):
    cells = ["1", "-2.5", "+3.", ".5", "1e3", "-1E-2", " 7 ", "0"]
    rows = [f"{c},{i}" for i, c in enumerate(cells)] + ['"4",9']  # a quote: the slow path too
    (tmp_path / "ok.csv").write_text("a,b\n" + "\n".join(rows) + "\n")
    result = adcore(tmp_path, "run", "-a", "hbos", "-i", "ok.csv", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["n_samples"] == len(rows)


def test_k2_a_first_row_of_non_ascii_digits_is_a_header(tmp_path):
    (tmp_path / "h.csv").write_text("\u0661,\u0662\n" + "".join(f"{i},{i % 3}\n" for i in range(20)))
    result = adcore(tmp_path, "run", "-a", "hbos", "-i", "h.csv", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["n_samples"] == 20


def test_k2_columns_by_position_take_ascii_digits_only(tmp_path, data):
    refused(
        adcore(tmp_path, "run", "-a", "hbos", "-i", "x.csv", "--no-header", "--columns", "²"),
        "unknown column",
    )


# ------------------------------------------------------------------------- K3
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--columns", ""], "empty column name"),
        (["--columns", "a,,b"], "empty column name"),
        (["--columns", "a,"], "empty column name"),
        (["--threshold", "mad:"], "has no value after ':'"),
        (["--threshold", "fixed:"], "has no value after ':'"),
        (["--threshold", "mad:1_0"], "is not a number"),
        (["--threshold", "zscore:\uff12"], "is not a number"),
        (["--threshold", "contamination:"], "takes no value"),
    ],
)
def test_k3_empty_items_and_values_are_refused(tmp_path, data, args, needle):
    refused(adcore(tmp_path, "run", "-a", "hbos", "-i", "x.csv", *args), needle)


@pytest.mark.parametrize("algo", ["hbos,,mad", "hbos,mad,", ",hbos,mad", ","])
def test_k3_an_empty_ensemble_member_is_refused(tmp_path, data, algo):
    refused(adcore(tmp_path, "run", "-a", algo, "-i", "x.csv"), "empty detector name")


def test_k3_score_and_explain_refuse_empty_columns_too(tmp_path, data):
    store = str(tmp_path / "store")
    assert adcore(tmp_path, "fit", "-a", "hbos", "-m", "m", "-i", "x.csv", "--store", store).returncode == 0
    refused(
        adcore(tmp_path, "score", "-m", "m", "-i", "x.csv", "--columns", "", "--store", store), "empty column"
    )
    refused(
        adcore(tmp_path, "fit", "-a", "hbos", "-m", "n", "-i", "x.csv", "--columns", "a,,b"), "empty column"
    )


def test_k3_pyod_iforest_behaviour_takes_its_documented_choices(tmp_path, data):
    pytest.importorskip("adcore_pyod")
    pytest.importorskip("pyod")
    bad = adcore(tmp_path, "run", "-a", "pyod:iforest", "-p", "behaviour=bogus", "-i", "x.csv", autoload=True)
    refused(bad, "behaviour", "'old' or 'new'")
    good = adcore(
        tmp_path, "run", "-a", "pyod:iforest", "-p", "behaviour=new", "-i", "x.csv", "--json", autoload=True
    )
    assert good.returncode == 0, good.stderr


# ------------------------------------------------------------------------- K6
def _records(path: Path) -> None:
    rng = np.random.default_rng(2)
    path.write_text(
        "".join(json.dumps({"a": float(u), "b": float(v)}) + "\n" for u, v in rng.normal(size=(30, 2)))
    )


@pytest.mark.parametrize("option", ["--sink", "--dead-letter", "--events"])
def test_k6_a_stream_output_cannot_be_its_source(tmp_path, option):
    source = tmp_path / "in.jsonl"
    _records(source)
    os.symlink("in.jsonl", tmp_path / "link.jsonl")
    os.link(source, tmp_path / "hard.jsonl")
    before = source.read_bytes()
    for url in (
        "file://in.jsonl",
        "file://./in.jsonl",
        f"file://{source}",
        "file://link.jsonl",
        "file://hard.jsonl",
    ):
        args = ["stream", "--source", "file://in.jsonl", option, url]
        if option != "--sink":
            args += ["--sink", "file://out.jsonl"]
        refused(adcore(tmp_path, *args, timeout=60), "is the --source file", option)
        assert source.read_bytes() == before, url
    assert not (tmp_path / "out.jsonl").exists()


def test_k6_a_stream_to_another_file_still_runs(tmp_path):
    _records(tmp_path / "in.jsonl")
    result = adcore(
        tmp_path, "stream", "--source", "file://in.jsonl", "--sink", "file://out.jsonl", timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 30


# ------------------------------------------------------------------------- K7
def test_k7_reads_never_create_a_store(tmp_path, data):
    missing = tmp_path / "mistyped" / "store"
    for args in (
        ["models", "--store", str(missing)],
        ["models", "--json", "--store", str(missing)],
        ["models", "--store", str(missing), "show", "m"],
        ["models", "show", "m", "--store", str(missing)],
        ["models", "rm", "m@1", "--store", str(missing)],
        ["score", "-m", "m", "-i", "x.csv", "--store", str(missing)],
        ["explain", "-m", "m", "-i", "x.csv", "--store", str(missing)],
    ):
        refused(adcore(tmp_path, *args), "no model store at", str(missing), "does not exist")
    assert not (tmp_path / "mistyped").exists()


def test_k7_an_existing_directory_without_an_index_is_not_a_store(tmp_path, data):
    plain = tmp_path / "somewhere"
    plain.mkdir()
    refused(adcore(tmp_path, "models", "--store", str(plain)), "no model store at", "has no model index")
    refused(adcore(tmp_path, "score", "-m", "m", "-i", "x.csv", "--store", str(plain)), "no model store at")
    assert list(plain.iterdir()) == []


def test_k7_the_configured_store_before_the_first_fit_is_empty_and_not_created(tmp_path, data):
    listed = adcore(tmp_path, "models", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    refused(adcore(tmp_path, "score", "-m", "m", "-i", "x.csv"), "no model named 'm'")
    refused(adcore(tmp_path, "models", "show", "m"), "no model named 'm'")
    assert not (tmp_path / "home" / "models").exists()
    fitted = adcore(tmp_path, "fit", "-a", "hbos", "-m", "m", "-i", "x.csv")  # a write creates it
    assert fitted.returncode == 0, fitted.stderr
    assert adcore(tmp_path, "score", "-m", "m", "-i", "x.csv", "--json").returncode == 0


def test_k3_bench_refuses_an_empty_detector_name(tmp_path, data):
    refused(
        adcore(tmp_path, "bench", "--algo", "hbos,,mad", "--datasets", str(tmp_path)), "empty detector name"
    )
