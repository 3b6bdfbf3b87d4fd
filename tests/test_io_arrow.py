"""pyarrow's CSV reader and writer give what the stdlib path gives: values, errors, columns.

Every case reads (or writes) the same input twice, with ``ADCORE_CSV_ENGINE=stdlib`` (the
reference) and with the default engine (pyarrow where installed), and compares: feature
values bit for bit (NaN where NaN), passthrough text, feature names, and for bad input the
whole error message (file, line, column). Written scores are compared as parsed values.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adcore.data import iter_dataset_chunks, read_dataset, write_scores
from adcore.errors import DataError

pytest.importorskip("pyarrow")


@pytest.fixture(autouse=True)
def arrow_for_small_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Arrow serves only large files and batches by default; these cases are small."""
    from adcore.io import arrow_csv

    monkeypatch.setattr(arrow_csv, "MIN_BYTES", 0)
    monkeypatch.setattr(arrow_csv, "MIN_ROWS", 0)


def read_both(monkeypatch: pytest.MonkeyPatch, path: Path, **kwargs: Any) -> tuple[Any, Any]:
    """``read_dataset`` with each engine: a Dataset, or the DataError's text."""
    out = []
    for engine in ("stdlib", "auto"):
        monkeypatch.setenv("ADCORE_CSV_ENGINE", engine)
        try:
            out.append(read_dataset(path, **kwargs))
        except DataError as e:
            out.append(f"DataError: {e}")
    return out[0], out[1]


def assert_same(a: Any, b: Any) -> None:
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
        return
    assert a.feature_names == b.feature_names
    np.testing.assert_array_equal(a.X, b.X)  # NaN == NaN here; values bit for bit
    assert a.passthrough == b.passthrough
    assert a.n_input_rows == b.n_input_rows
    assert np.array_equal(a.kept_rows, b.kept_rows) if a.kept_rows is not None else b.kept_rows is None


CASES = {
    "plain": "a,b,c\n1,2,3\n4.5,-6e3,.7\n",
    "no header": "1,2,3\n4,5,6\n",
    "bom": "\ufeffa,b\n1,2\n3,4\n",
    "bom no header": "\ufeff1,2\n3,4\n",
    "crlf": "a,b\r\n1,2\r\n3,4\r\n",
    "quoted numbers": 'a,b\n"1.5",2\n3,"4"\n',
    "spaces": "a,b\n 1 , 2\n3,4 \n",
    "blank lines": "a,b\n1,2\n\n3,4\n\n",
    "inf and nan words": "a,b\ninf,-Infinity\nNaN,nan\n",
    "exotic nan": "a,b\nnan(1),2\n3,4\n",
    "na tokens": "a,b\nNA,null\nNone,n/a\n,2\n",
    "na odd spelling": "a,b\nnUlL,2\n3, NA\n",
    "empty cells": "a,b,c\n1,,3\n,5,\n7,8,9\n",
    "passthrough": 'id,a,b\nx1,1,2\n,3,4\n"y, 2",5,6\n',
    "passthrough quoted newline": 'id,a\n"two\nlines",1\nz,2\n',
    "passthrough quotes": 'id,a\n"say ""hi""",1\nz,2\n',
    "passthrough spaces": 'id,a\n  padded  ,1\n" quoted ",2\nNA,3\n',
    "passthrough unicode": "id,a\nzürich,1\n東京,2\n",
    "not a number": "a,b\n1,2\n3,x\n",
    "underscore number": "a,b\n1_000,2\n",
    "ragged": "a,b\n1,2\n3\n",
    "too many": "a,b\n1,2\n3,4,5\n",
    "header only": "a,b\n",
    "bad utf8 passthrough": b"id,a\n\xff,1\n",
    "nul byte": "a,b\n1\x00,2\n",
    "tsv-like single column": "a\n1\n2\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("nan_policy", ["error", "drop", "median"])
def test_reading_gives_the_same_result(monkeypatch, tmp_path, name, nan_policy):
    data = CASES[name]
    path = tmp_path / "data.csv"
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    columns = ["a"] if name.startswith("passthrough") or name.startswith("bad utf8") else None
    a, b = read_both(monkeypatch, path, columns=columns, nan_policy=nan_policy)
    assert_same(a, b)


@pytest.mark.parametrize("header", [True, False, None])
def test_header_choice_gives_the_same_result(monkeypatch, tmp_path, header):
    path = tmp_path / "data.csv"
    path.write_text("1,2\n3,4\n5,6\n")
    assert_same(*read_both(monkeypatch, path, header=header))


def test_tsv(monkeypatch, tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("id\ta\tb\nx\t1\t\ny z\t3\t4\n")
    assert_same(*read_both(monkeypatch, path, columns=["a", "b"], nan_policy="drop"))


def big_csv(path: Path, rows: int, bad_row: int | None = None) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, 3)).round(4)
    lines = ["id,a,b,c"] + [f"r{i},{x[0]},{x[1]},{x[2]}" for i, x in enumerate(X)]
    if bad_row is not None:
        lines[bad_row + 1] = f"r{bad_row},1,oops,3"
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("chunk_size", [7, 1000, 100_000])
def test_chunks_hold_the_same_rows_and_errors_name_the_same_line(monkeypatch, tmp_path, chunk_size):
    """A bad cell far into the file, after Arrow has delivered rows: the stdlib reader takes
    over from the next row, and its error names the line and the column."""
    path = tmp_path / "big.csv"
    big_csv(path, 30_000, bad_row=25_000)
    results = []
    for engine in ("stdlib", "auto"):
        monkeypatch.setenv("ADCORE_CSV_ENGINE", engine)
        rows, ids = [], []
        with pytest.raises(DataError) as err:
            for ds in iter_dataset_chunks(path, chunk_size=chunk_size, columns=["a", "b", "c"]):
                rows.append(ds.X)
                ids.extend(ds.passthrough["id"])
        results.append((np.concatenate(rows) if rows else np.empty((0, 3)), ids, str(err.value)))
    (xa, ida, ea), (xb, idb, eb) = results
    assert ea == eb and "line 25002" in ea and "'oops'" in ea
    np.testing.assert_array_equal(xa, xb)
    assert ida == idb


def test_a_missing_value_far_in_the_file_names_the_same_line(monkeypatch, tmp_path):
    path = tmp_path / "big.csv"
    big_csv(path, 5_000)
    text = path.read_text().splitlines()
    text[4001] = "r4000,1,,3"  # an empty cell: NaN, refused by nan_policy="error"
    text.insert(10, "")  # a blank line shifts every later line by one
    path.write_text("\n".join(text) + "\n")
    a, b = read_both(monkeypatch, path, columns=["a", "b", "c"])
    assert isinstance(a, str) and "line 4003" in a
    assert a == b


def parse_csv(data: bytes) -> list[list[Any]]:
    """Rows with every cell that parses as a float compared as a float, else as text."""

    def cell(x: str) -> Any:
        try:
            return ("num", float(x)) if not math.isnan(float(x)) else ("nan",)
        except ValueError:
            return ("text", x)

    return [[cell(x) for x in row] for row in csv.reader(io.StringIO(data.decode()))]


@pytest.mark.parametrize(
    "passthrough",
    [
        None,
        {"id": ["a", "b", "c", "d"]},
        {"id": ["a", "with,comma", 'with"quote', "multi\nline"]},
        {"id": [1, None, 2.5, "x"]},
        {"id": ["", "b", "", "d"]},
    ],
)
def test_written_scores_have_the_same_values(monkeypatch, tmp_path, passthrough):
    scores = np.array([1.0, 1e-05, np.nan, 123456789012345.0])
    labels = np.array([1, 0, -1, 1])
    extra = {"rank": np.array([3, 2, 4, 1]), "z": np.array([0.5, -np.inf, np.inf, 2.0])}
    out = {}
    for engine in ("stdlib", "auto"):
        monkeypatch.setenv("ADCORE_CSV_ENGINE", engine)
        path = tmp_path / f"{engine}.csv"
        write_scores(path, scores, labels, passthrough=passthrough, extra=extra)
        out[engine] = path.read_bytes()
    assert out["stdlib"] == out["auto"]  # byte for byte
    assert parse_csv(out["stdlib"]) == parse_csv(out["auto"])


def test_written_scores_round_trip_exactly(monkeypatch, tmp_path):
    scores = np.random.default_rng(1).normal(size=10_000) * 10.0 ** np.random.default_rng(2).integers(
        -8, 8, 10_000
    )
    labels = (scores > 0).astype(int)
    monkeypatch.setenv("ADCORE_CSV_ENGINE", "auto")
    write_scores(tmp_path / "s.csv", scores, labels)
    back = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(back[:, 0], scores)
    np.testing.assert_array_equal(back[:, 1], labels)


def test_a_plain_file_is_read_by_arrow_alone(monkeypatch, tmp_path):
    """The common case never falls back: otherwise the equality above would prove nothing."""
    from adcore.io import arrow_csv

    def no_fallback(*args: Any) -> Any:
        raise AssertionError("fell back to the stdlib reader")

    monkeypatch.setattr(arrow_csv, "_resume", no_fallback)
    monkeypatch.setenv("ADCORE_CSV_ENGINE", "auto")
    path = tmp_path / "big.csv"
    big_csv(path, 20_000)
    text = path.read_text().replace("r5,", "r5 with spaces,").replace("\nr7,0", "\nr7,NA")
    path.write_text(text)
    ds = read_dataset(path, columns=["a", "b", "c"], nan_policy="drop")
    assert ds.n_input_rows == 20_000


@pytest.mark.parametrize("name", sorted(CASES))
def test_tiny_blocks_give_the_same_result(monkeypatch, tmp_path, name):
    """Blocks of a few bytes: rows split over many blocks, quoted line breaks across a block's
    end (Arrow fails there and the stdlib reader takes over), blocks of blank lines only."""
    from adcore.io import arrow_csv

    monkeypatch.setattr(arrow_csv, "BLOCK_BYTES", 7)
    data = CASES[name]
    path = tmp_path / "data.csv"
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    columns = ["a"] if name.startswith("passthrough") or name.startswith("bad utf8") else None
    assert_same(*read_both(monkeypatch, path, columns=columns, nan_policy="drop"))


def test_a_whole_file_read_sized_too_small_from_its_first_block_grows(monkeypatch, tmp_path):
    """``read_dataset`` sizes one matrix from the first block's bytes per row: long rows first
    and short ones after make that estimate far too small, and the matrix must grow."""
    from adcore.io import arrow_csv

    monkeypatch.setattr(arrow_csv, "BLOCK_BYTES", 4096)
    rows = [f"{'long text ' * 20},{i},{i / 7}" for i in range(200)]
    rows += [f"s,{i},{-i}" for i in range(60_000)]
    path = tmp_path / "data.csv"
    path.write_text("id,a,b\n" + "\n".join(rows) + "\n")
    stdlib, arrow = read_both(monkeypatch, path, columns=["a", "b"])
    assert_same(stdlib, arrow)
    assert arrow.X.shape == (60_200, 2) and arrow.X.flags.c_contiguous
