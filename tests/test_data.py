"""Tests for adcore.data: real files in tmp_path, every user error checked for a useful message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from adcore.data import (
    SUPPORTED_INPUT_FORMATS,
    SUPPORTED_OUTPUT_FORMATS,
    Dataset,
    ScoreWriter,
    check_output_path,
    format_from_path,
    iter_dataset_chunks,
    read_dataset,
    write_scores,
)
from adcore.errors import DataError, MissingDependencyError

ROOT = Path(__file__).resolve().parents[1]


def put(tmp_path: Path, name: str, text: str | bytes) -> str:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return str(p)


def data_error(match: str, fn, *args, **kwargs) -> DataError:
    with pytest.raises(DataError, match=match) as exc:
        fn(*args, **kwargs)
    return exc.value


def concat_chunks(path: str, chunk_size: int, **kw) -> tuple[np.ndarray, list[Dataset]]:
    chunks = list(iter_dataset_chunks(path, chunk_size=chunk_size, **kw))
    return np.concatenate([c.X for c in chunks]), chunks


# --------------------------------------------------------------------------- formats and paths


def test_format_from_path_is_case_insensitive_and_knows_aliases():
    assert format_from_path("a/B.CSV") == "csv"
    assert format_from_path("x.pq") == "parquet"
    assert format_from_path(Path("x.ndjson")) == "jsonl"
    assert set(SUPPORTED_INPUT_FORMATS) >= {"csv", "tsv", "parquet", "npy", "npz", "json", "jsonl"}
    assert set(SUPPORTED_OUTPUT_FORMATS) >= {"csv", "parquet", "jsonl", "json", "npy"}


def test_unknown_extension(tmp_path):
    p = put(tmp_path, "data.xlsx", "a,b\n1,2\n")
    e = data_error("unknown file extension '.xlsx'", read_dataset, p)
    assert ".csv" in str(e) and "--format" in str(e) and e.path == p


def test_fmt_overrides_extension(tmp_path):
    p = put(tmp_path, "data.txt", "a\tb\n1\t2\n")
    d = read_dataset(p, fmt="TSV")
    assert d.feature_names == ["a", "b"] and d.X.tolist() == [[1.0, 2.0]]
    data_error("unknown format 'xls'", read_dataset, p, fmt="xls")


def test_missing_file(tmp_path):
    e = data_error("file not found", read_dataset, tmp_path / "nope.csv")
    assert e.path == str(tmp_path / "nope.csv")


def test_directory_instead_of_file(tmp_path):
    (tmp_path / "d.csv").mkdir()
    data_error("is a directory", read_dataset, tmp_path / "d.csv")


@pytest.mark.parametrize("name", ["e.csv", "e.jsonl", "e.json", "e.npy", "e.npz", "e.parquet"])
def test_empty_file(tmp_path, name):
    data_error(r"empty \(0 bytes\)", read_dataset, put(tmp_path, name, b""))


# --------------------------------------------------------------------------- CSV


def test_csv_header_detected(tmp_path):
    d = read_dataset(put(tmp_path, "h.csv", "a,b\n1,2\n3,4.5\n"))
    assert d.feature_names == ["a", "b"]
    assert d.X.tolist() == [[1, 2], [3, 4.5]]
    assert d.X.dtype == np.float64 and d.X.flags.c_contiguous
    assert d.n_samples == 2 and d.n_features == 2 and d.n_input_rows == 2 and d.kept_rows is None


def test_csv_no_header_detected_when_first_row_is_numeric(tmp_path):
    # empty and "nan" count as numbers for detection
    d = read_dataset(put(tmp_path, "n.csv", "1,,nan\n3,4,5\n"), nan_policy="drop")
    assert d.feature_names == ["x0", "x1", "x2"]
    assert d.n_input_rows == 2 and d.X.tolist() == [[3, 4, 5]]


def test_csv_header_forced_either_way(tmp_path):
    p = put(tmp_path, "f.csv", "1,2\n3,4\n")
    assert read_dataset(p, header=True).feature_names == ["1", "2"]
    assert read_dataset(p, header=True).X.tolist() == [[3, 4]]
    q = put(tmp_path, "g.csv", "5,6\n")
    assert read_dataset(q, header=False).feature_names == ["x0", "x1"]
    data_error("is not a number", read_dataset, put(tmp_path, "t.csv", "a,b\n1,2\n"), header=False)


def test_csv_columns_selection_keeps_others_as_passthrough(tmp_path):
    p = put(tmp_path, "c.csv", 'id,b,a,city\nr1,1,2,Paris\nr2,3,4,"Lyon, FR"\n')
    d = read_dataset(p, columns=["a", "b"])
    assert d.feature_names == ["a", "b"]
    assert d.X.tolist() == [[2, 1], [4, 3]]
    assert d.passthrough == {"id": ["r1", "r2"], "city": ["Paris", "Lyon, FR"]}


def test_csv_columns_by_position_without_header(tmp_path):
    p = put(tmp_path, "c.csv", "1,a,2\n3,b,4\n")
    d = read_dataset(p, columns=["2", "x0"], header=False)
    assert d.feature_names == ["x2", "x0"] and d.X.tolist() == [[2, 1], [4, 3]]
    assert d.passthrough == {"x1": ["a", "b"]}


def test_csv_unknown_column_lists_available(tmp_path):
    p = put(tmp_path, "c.csv", "id,a,b\nx,1,2\n")
    e = data_error("unknown column 'zz'", read_dataset, p, columns=["a", "zz"])
    assert "'id', 'a', 'b'" in str(e)


def test_csv_non_numeric_cell_names_line_and_column_and_suggests_columns(tmp_path):
    p = put(tmp_path, "bad.csv", "a,b\n1,2\n3,oops\n")
    e = data_error("'oops' is not a number", read_dataset, p)
    assert (e.line, e.column) == (3, "b")
    assert "line 3" in str(e) and "column 'b'" in str(e) and "--columns" in str(e)


def test_csv_text_column_without_columns_is_an_error_naming_it(tmp_path):
    p = put(tmp_path, "t.csv", "id,a\nr1,1\nr2,2\n")
    e = data_error("'r1' is not a number", read_dataset, p)
    assert e.column == "id" and e.line == 2


def test_csv_ragged_row(tmp_path):
    p = put(tmp_path, "r.csv", "a,b,c\n1,2,3\n4,5\n")
    e = data_error("has 2 fields but the header", read_dataset, p)
    assert e.line == 3 and "has 3" in str(e)


def test_csv_ragged_row_with_passthrough_columns(tmp_path):
    p = put(tmp_path, "r.csv", "id,a,b\nx,1,2\ny,3,4,5\n")
    e = data_error("has 4 fields", read_dataset, p, columns=["a"])
    assert e.line == 3


def test_csv_header_only(tmp_path):
    data_error("header row .* but no data rows", read_dataset, put(tmp_path, "h.csv", "a,b\n"))
    data_error("header row .* but no data rows", read_dataset, put(tmp_path, "h2.csv", "a,b\n\n\n"))


def test_csv_only_blank_lines(tmp_path):
    data_error("no rows", read_dataset, put(tmp_path, "b.csv", "\n\n"))


def test_min_rows(tmp_path):
    p = put(tmp_path, "one.csv", "a,b\n1,2\n")
    data_error("need at least 2 rows, got 1", read_dataset, p, min_rows=2)
    q = put(tmp_path, "two.csv", "a,b\n1,2\n,3\n")
    e = data_error(
        "need at least 2 rows, got 1 after dropping 1 of 2 rows",
        read_dataset,
        q,
        min_rows=2,
        nan_policy="drop",
    )
    assert e.path == q


@pytest.mark.parametrize("policy", ["error", "drop", "median"])
@pytest.mark.parametrize("cell", ["inf", "-inf", "1e999", "Infinity"])
def test_inf_is_refused_with_every_policy(tmp_path, policy, cell):
    p = put(tmp_path, "i.csv", f"a,b\n1,2\n3,{cell}\n")
    e = data_error("infinite value", read_dataset, p, nan_policy=policy)
    assert (e.line, e.column) == (3, "b")


def test_nan_with_error_policy_names_line_column_and_suggests_policies(tmp_path):
    p = put(tmp_path, "n.csv", "a,b\n1,2\n3,NA\n")
    e = data_error("missing value", read_dataset, p)
    assert (e.line, e.column) == (3, "b")
    assert "--nan drop" in str(e) and "--nan median" in str(e)


def test_na_tokens_are_nan(tmp_path):
    p = put(tmp_path, "n.csv", "a,b\n1,\n,2\nNA,3\nnull,4\nNaN,5\nN/A,6\n7,8\n nan ,9\n")
    d = read_dataset(p, nan_policy="drop")
    assert d.X.tolist() == [[7, 8]] and d.kept_rows.tolist() == [6] and d.n_input_rows == 8


def test_nan_policy_median(tmp_path):
    p = put(tmp_path, "m.csv", "a,b\n1,10\n,20\n3,\n5,40\n")
    d = read_dataset(p, nan_policy="median")
    assert d.X.tolist() == [[1, 10], [3, 20], [3, 20], [5, 40]]
    assert d.kept_rows is None


def test_nan_policy_median_all_nan_column(tmp_path):
    p = put(tmp_path, "m.csv", "a,b\n1,\n2,NA\n")
    e = data_error("every value is missing", read_dataset, p, nan_policy="median")
    assert e.column == "b"


def test_unknown_nan_policy(tmp_path):
    p = put(tmp_path, "a.csv", "a\n1\n")
    data_error("unknown nan_policy 'zero'", read_dataset, p, nan_policy="zero")
    data_error("unknown nan_policy", Dataset.from_array, [[1.0]], nan_policy="zero")


def test_csv_duplicate_header(tmp_path):
    data_error("'a' appears twice", read_dataset, put(tmp_path, "d.csv", "a,b,a\n1,2,3\n"))


def test_csv_quotes_multiline_fields_blank_lines_bom_and_crlf(tmp_path):
    text = '\ufeffid,a,b\r\n"x, 1",1,2\r\n\r\n"multi\r\nline",3,"4"\r\ny,5,6\r\nz,7,oops\r\n'
    p = put(tmp_path, "q.csv", text.encode("utf-8"))
    e = data_error("'oops' is not a number", read_dataset, p, columns=["a", "b"])
    assert e.line == 7  # the quoted newline and the blank line both count as lines
    good = put(tmp_path, "q2.csv", text.replace("oops", "8").encode("utf-8"))
    d = read_dataset(good, columns=["a", "b"])
    assert d.feature_names == ["a", "b"]
    assert d.X.tolist() == [[1, 2], [3, 4], [5, 6], [7, 8]]
    assert d.passthrough["id"] == ["x, 1", "multi\r\nline", "y", "z"]


def test_csv_fast_and_slow_paths_agree(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4)).round(5)
    plain = "a,b,c,d\n" + "".join(",".join(map(repr, r)) + "\n" for r in X.tolist())
    quoted = "a,b,c,d\n" + "".join(",".join(f'"{v!r}"' for v in r) + "\n" for r in X.tolist())
    # a quoted newline inside a text cell forces the csv-module path for the whole block
    odd = "a,b,c,d\n" + "".join(",".join(map(repr, r)) + "\n" for r in X.tolist()) + '1,2,3,"4\n"\n'
    a = read_dataset(put(tmp_path, "p.csv", plain)).X
    b = read_dataset(put(tmp_path, "q.csv", quoted)).X
    assert np.array_equal(a, X) and np.array_equal(b, X)
    c = read_dataset(put(tmp_path, "m.csv", odd)).X
    assert np.array_equal(c[:300], X) and c[300].tolist() == [1, 2, 3, 4]  # "4\n" is a number
    e = data_error(r"'x\\ny' is not a number", read_dataset, put(tmp_path, "n.csv", odd + '"x\ny",1,2,3\n'))
    assert (e.line, e.column) == (304, "a")


def test_tsv(tmp_path):
    d = read_dataset(put(tmp_path, "t.tsv", "a\tb\n1\t2\n3\t\n"), nan_policy="median")
    assert d.X.tolist() == [[1, 2], [3, 2]]


def test_csv_not_utf8(tmp_path):
    p = put(tmp_path, "l.csv", b"id,a\ncaf\xe9,1\n")
    e = data_error("not UTF-8", read_dataset, p, columns=["a"])
    assert e.line == 2


def test_csv_errors_in_chunks_name_absolute_lines(tmp_path):
    rows = [f"{i},{i * 2}" for i in range(250)]
    rows[203] = "203,bad"
    p = put(tmp_path, "big.csv", "a,b\n" + "\n".join(rows) + "\n")
    it = iter_dataset_chunks(p, chunk_size=50)
    e = data_error("'bad' is not a number", list, it)
    assert e.line == 205  # header is line 1, row 0 is line 2


def test_csv_chunks_match_read_dataset_across_quoted_newlines(tmp_path):
    lines = ["id,a,b"]
    for i in range(97):
        ident = f'"id\n{i}"' if i % 10 == 9 else f"id{i}"  # quoted newline, some at chunk ends
        lines.append(f"{ident},{i},{'' if i % 7 == 3 else i * 0.5}")
    p = put(tmp_path, "c.csv", "\n".join(lines) + "\n")
    whole = read_dataset(p, columns=["a", "b"], nan_policy="drop")
    X, chunks = concat_chunks(p, 10, columns=["a", "b"], nan_policy="drop")
    assert np.array_equal(X, whole.X)
    assert sum(len(c.passthrough["id"]) for c in chunks) == 97
    assert [v for c in chunks for v in c.passthrough["id"]] == whole.passthrough["id"]
    assert all(c.n_input_rows <= 10 for c in chunks)
    starts = [c.first_row for c in chunks]
    assert starts == sorted(starts) and starts[0] == 0


# --------------------------------------------------------------------------- JSON / JSONL


def test_jsonl_objects(tmp_path):
    p = put(tmp_path, "o.jsonl", '{"a": 1, "b": 2.5, "id": "x"}\n\n{"a": null, "b": 3, "id": "y"}\n')
    d = read_dataset(p, columns=["a", "b"], nan_policy="drop")
    assert d.X.tolist() == [[1, 2.5]] and d.kept_rows.tolist() == [0]
    assert d.passthrough == {"id": ["x", "y"]}


def test_jsonl_arrays(tmp_path):
    d = read_dataset(put(tmp_path, "a.ndjson", "[1, 2]\n[3, 4]\n"))
    assert d.feature_names == ["x0", "x1"] and d.X.tolist() == [[1, 2], [3, 4]]


def test_jsonl_invalid_json_names_line(tmp_path):
    p = put(tmp_path, "bad.jsonl", '{"a": 1}\n\n{"a": 2,}\n')
    e = data_error("invalid JSON", read_dataset, p)
    assert e.line == 3


def test_jsonl_missing_key(tmp_path):
    p = put(tmp_path, "m.jsonl", '{"a": 1, "b": 2}\n{"a": 3}\n')
    e = data_error("missing key", read_dataset, p)
    assert (e.line, e.column) == (2, "b")


def test_jsonl_bool_and_string_are_not_numbers(tmp_path):
    e = data_error("boolean, not a number", read_dataset, put(tmp_path, "b.jsonl", '{"a": 1}\n{"a": true}\n'))
    assert (e.line, e.column) == (2, "a")
    e = data_error("'7' is a string", read_dataset, put(tmp_path, "s.jsonl", '{"a": 1, "b": "7"}\n'))
    assert e.column == "b" and "--columns" in str(e)


def test_jsonl_ragged_array(tmp_path):
    e = data_error("has 1 values, expected 2", read_dataset, put(tmp_path, "r.jsonl", "[1, 2]\n[3]\n"))
    assert e.line == 2


def test_jsonl_integer_too_large_for_float64(tmp_path):
    p = put(tmp_path, "h.jsonl", "[1]\n[" + "9" * 400 + "]\n")
    e = data_error("too large for a float64", read_dataset, p)
    assert e.line == 2


def test_jsonl_inf_literal(tmp_path):
    e = data_error("infinite value", read_dataset, put(tmp_path, "i.jsonl", '{"a": 1}\n{"a": Infinity}\n'))
    assert e.line == 2


def test_jsonl_only_blank_lines(tmp_path):
    data_error("no records", read_dataset, put(tmp_path, "b.jsonl", "\n \n"))


def test_json_shapes(tmp_path):
    objs = put(tmp_path, "o.json", json.dumps([{"a": 1, "b": 2}, {"a": 3, "b": None}]))
    assert read_dataset(objs, nan_policy="median").X.tolist() == [[1, 2], [3, 2]]
    arrs = put(tmp_path, "a.json", "[[1, 2], [3, 4]]")
    assert read_dataset(arrs).feature_names == ["x0", "x1"]
    doc = {"columns": ["p", "q"], "data": [[1, 2], [3, 4]], "index": [0, 1]}  # pandas orient="split"
    split = put(tmp_path, "s.json", json.dumps(doc))
    d = read_dataset(split, columns=["q"])
    assert d.feature_names == ["q"] and d.passthrough == {"p": [1, 3]} and d.X.tolist() == [[2], [4]]


def test_json_errors(tmp_path):
    e = data_error("invalid JSON", read_dataset, put(tmp_path, "bad.json", '[\n{"a": 1},\n{"a": }\n]'))
    assert e.line == 3
    data_error("no data rows", read_dataset, put(tmp_path, "e.json", "[]"))
    data_error(
        "expected a list of objects.*got an object with keys",
        read_dataset,
        put(tmp_path, "o.json", '{"rows": []}'),
    )
    e = data_error("'x' is a string", read_dataset, put(tmp_path, "s.json", '[{"a": 1}, {"a": "x"}]'))
    assert (e.row, e.column) == (1, "a")


# --------------------------------------------------------------------------- NPY / NPZ


def test_npy_2d_1d_and_structured(tmp_path):
    X = np.arange(12, dtype=np.int32).reshape(4, 3)
    np.save(tmp_path / "x.npy", X)
    d = read_dataset(tmp_path / "x.npy")
    assert d.X.dtype == np.float64 and np.array_equal(d.X, X) and d.feature_names == ["x0", "x1", "x2"]
    np.save(tmp_path / "v.npy", np.array([1.0, 2.0]))
    assert read_dataset(tmp_path / "v.npy").X.shape == (2, 1)
    rec = np.array([(1.0, 2), (3.0, 4)], dtype=[("u", "f8"), ("v", "i4")])
    np.save(tmp_path / "r.npy", rec)
    d = read_dataset(tmp_path / "r.npy", columns=["v"])
    assert d.feature_names == ["v"] and d.X.tolist() == [[2], [4]] and d.passthrough == {"u": [1.0, 3.0]}


def test_npy_bad_dtypes_and_values(tmp_path):
    np.save(tmp_path / "s.npy", np.array([["a", "b"]]))
    data_error("not numeric", read_dataset, tmp_path / "s.npy")
    np.save(tmp_path / "o.npy", np.array([[1, None]], dtype=object), allow_pickle=True)
    data_error("cannot be read as a .npy file", read_dataset, tmp_path / "o.npy")
    np.save(tmp_path / "b.npy", np.array([[True]]))
    data_error("boolean", read_dataset, tmp_path / "b.npy")
    np.save(tmp_path / "3.npy", np.zeros((2, 2, 2)))
    data_error("expected a 2-D array", read_dataset, tmp_path / "3.npy")
    np.save(tmp_path / "n.npy", np.array([[1.0, 2.0], [3.0, np.nan]]))
    e = data_error("missing value", read_dataset, tmp_path / "n.npy")
    assert (e.row, e.column) == (1, "x1")
    np.save(tmp_path / "i.npy", np.array([[1.0, 2.0], [-np.inf, 1.0]]))
    e = data_error("infinite", read_dataset, tmp_path / "i.npy", nan_policy="drop")
    assert (e.row, e.column) == (1, "x0")
    put(tmp_path, "junk.npy", b"not an array at all")
    data_error("cannot be read as a .npy file", read_dataset, tmp_path / "junk.npy")


def test_npz(tmp_path):
    np.savez(tmp_path / "one.npz", features=np.ones((2, 2)))
    assert read_dataset(tmp_path / "one.npz").X.shape == (2, 2)
    np.savez(tmp_path / "x.npz", X=np.zeros((3, 1)), y=np.ones(3))
    assert read_dataset(tmp_path / "x.npz").X.shape == (3, 1)
    np.savez(tmp_path / "many.npz", a=np.ones(2), b=np.ones(2))
    e = data_error("several arrays", read_dataset, tmp_path / "many.npz")
    assert "a, b" in str(e) and "'X'" in str(e)


# --------------------------------------------------------------------------- Parquet


def test_parquet_numeric_nulls_and_passthrough(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    t = pa.table({"id": ["a", "b", "c"], "x": pa.array([1, None, 3], pa.int64()), "y": [0.5, 1.5, 2.5]})
    pq.write_table(t, tmp_path / "t.parquet")
    e = data_error(r"non-numeric column\(s\) 'id'", read_dataset, tmp_path / "t.parquet")
    assert "--columns" in str(e)
    d = read_dataset(tmp_path / "t.parquet", columns=["x", "y"], nan_policy="drop")
    assert d.X.tolist() == [[1, 0.5], [3, 2.5]] and d.kept_rows.tolist() == [0, 2]
    assert d.passthrough == {"id": ["a", "b", "c"]}
    e = data_error("missing value", read_dataset, tmp_path / "t.parquet", columns=["x", "y"])
    assert (e.row, e.column) == (1, "x")
    put(tmp_path, "junk.parquet", b"PAR1 nope")
    data_error("cannot be read as a Parquet file", read_dataset, tmp_path / "junk.parquet")


# --------------------------------------------------------------------------- chunks == whole


def _write_all_formats(tmp_path: Path, X: np.ndarray) -> dict[str, str]:
    names = [f"f{j}" for j in range(X.shape[1])]
    paths = {}
    csv_lines = [",".join(names)] + [",".join("" if np.isnan(v) else repr(v) for v in r) for r in X.tolist()]
    paths["csv"] = put(tmp_path, "d.csv", "\n".join(csv_lines) + "\n")
    paths["jsonl"] = put(
        tmp_path,
        "d.jsonl",
        "".join(
            json.dumps({n: (None if np.isnan(v) else v) for n, v in zip(names, r, strict=True)}) + "\n"
            for r in X.tolist()
        ),
    )
    rows = [[None if np.isnan(v) else v for v in r] for r in X.tolist()]
    paths["json"] = put(tmp_path, "d.json", json.dumps(rows))
    np.save(tmp_path / "d.npy", X)
    paths["npy"] = str(tmp_path / "d.npy")
    np.savez(tmp_path / "d.npz", X=X)
    paths["npz"] = str(tmp_path / "d.npz")
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return paths
    table = pa.table({n: X[:, j] for j, n in enumerate(names)})
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=37)  # batches cross row groups
    paths["parquet"] = str(tmp_path / "d.parquet")
    return paths


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json", "npy", "npz", "parquet"])
def test_chunks_concatenate_to_read_dataset(tmp_path, fmt):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(203, 3))
    X[rng.random(X.shape) < 0.05] = np.nan
    paths = _write_all_formats(tmp_path, X)
    if fmt not in paths:
        pytest.skip("pyarrow not installed")
    whole = read_dataset(paths[fmt], nan_policy="drop")
    got, chunks = concat_chunks(paths[fmt], 50, nan_policy="drop")
    assert np.array_equal(got, whole.X)
    assert np.array_equal(got, X[~np.isnan(X).any(axis=1)])
    assert all(c.feature_names == whole.feature_names for c in chunks)
    assert sum(c.n_input_rows for c in chunks) == 203
    assert all(c.n_input_rows <= 50 for c in chunks)
    kept = np.concatenate(
        [c.first_row + (c.kept_rows if c.kept_rows is not None else np.arange(c.n_samples)) for c in chunks]
    )
    assert np.array_equal(kept, whole.kept_rows)


def test_chunk_arguments_are_checked_up_front(tmp_path):
    p = put(tmp_path, "a.csv", "a\n1\n")
    data_error("chunk_size must be a positive integer", iter_dataset_chunks, p, chunk_size=0)
    data_error("median", iter_dataset_chunks, p, chunk_size=10, nan_policy="median")
    data_error("unknown column", iter_dataset_chunks, p, chunk_size=10, columns=["b"])  # before iterating


def test_chunk_whose_rows_are_all_dropped_is_still_yielded(tmp_path):
    p = put(tmp_path, "a.csv", "id,a\nx,1\ny,\nz,\nw,4\n")
    chunks = list(iter_dataset_chunks(p, chunk_size=2, columns=["a"], nan_policy="drop"))
    assert [c.n_samples for c in chunks] == [1, 1]
    p2 = put(tmp_path, "b.csv", "id,a\nx,\ny,\nz,3\n")
    chunks = list(iter_dataset_chunks(p2, chunk_size=2, columns=["a"], nan_policy="drop"))
    assert [c.n_samples for c in chunks] == [0, 1]
    assert chunks[0].passthrough == {"id": ["x", "y"]}
    assert chunks[0].expand(np.array([]), np.nan).shape == (2,)


# --------------------------------------------------------------------------- Dataset.from_array


def test_from_array_numpy_lists_and_1d():
    d = Dataset.from_array(np.array([[1, 2], [3, 4]], dtype=np.int64), ["a", "b"])
    assert d.X.dtype == np.float64 and d.feature_names == ["a", "b"] and d.source == "array"
    d = Dataset.from_array([[1, None], [3, 4.5]], nan_policy="median")
    assert d.X.tolist() == [[1, 4.5], [3, 4.5]] and d.feature_names == ["x0", "x1"]
    assert Dataset.from_array([1.0, 2.0, 3.0]).X.shape == (3, 1)


def test_from_array_errors():
    data_error("different lengths", Dataset.from_array, [[1, 2], [3]])
    e = data_error("'x' is not a number", Dataset.from_array, [[1, 2], [3, "x"]])
    assert (e.row, e.column) == (1, 1)
    data_error("booleans", Dataset.from_array, np.array([[True, False]]))
    data_error("not numeric", Dataset.from_array, np.array([["a"]]))
    data_error("3 feature names given for 2 columns", Dataset.from_array, [[1, 2]], ["a", "b", "c"])
    e = data_error("missing value", Dataset.from_array, [[1.0, np.nan]], ["a", "b"])
    assert (e.row, e.column) == (0, "b")
    data_error("infinite", Dataset.from_array, [[1.0, np.inf]], nan_policy="drop")
    data_error("no data", Dataset.from_array, np.empty((0, 3)))


def test_from_array_dataframe():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1, 2, 3], "b": pd.array([1, None, 3], dtype="Int64"), "c": [0.5, 1.5, 2.5]})
    d = Dataset.from_array(df, nan_policy="drop")
    assert d.feature_names == ["a", "b", "c"] and d.source == "dataframe"
    assert d.X.tolist() == [[1, 1, 0.5], [3, 3, 2.5]] and d.kept_rows.tolist() == [0, 2]
    df["city"] = ["x", "y", "z"]
    e = data_error("column is not numeric", Dataset.from_array, df, nan_policy="drop")
    assert e.column == "city"
    d = Dataset.from_array(df, ["c", "a"])
    assert d.feature_names == ["c", "a"] and d.passthrough == {"b": [1, pd.NA, 3], "city": ["x", "y", "z"]}
    assert Dataset.from_array(df["a"]).feature_names == ["a"]


def test_drop_and_expand_keep_input_alignment(tmp_path):
    p = put(tmp_path, "a.csv", "id,a,b\nr0,1,2\nr1,,3\nr2,4,5\nr3,6,NA\nr4,7,8\n")
    d = read_dataset(p, columns=["a", "b"], nan_policy="drop")
    assert d.kept_rows.tolist() == [0, 2, 4] and d.n_input_rows == 5
    scores = d.X.sum(axis=1)
    labels = np.array([0, 1, 0])
    full_s = d.expand(scores, np.nan)
    full_l = d.expand(labels, -1)
    assert full_l.dtype.kind == "i" and full_l.tolist() == [0, -1, 1, -1, 0]
    out = tmp_path / "o.csv"
    write_scores(out, full_s, full_l, passthrough=d.passthrough)
    lines = out.read_text().splitlines()
    assert lines[0] == "id,score,label"
    assert lines[1:] == ["r0,3.0,0", "r1,,-1", "r2,9.0,1", "r3,,-1", "r4,15.0,0"]  # dropped: no score
    with pytest.raises(ValueError):
        d.expand(np.ones(5), 0)


# --------------------------------------------------------------------------- output


def _chunks_for_output():
    rng = np.random.default_rng(3)
    out = []
    start = 0
    for n in (4, 0, 7, 3):
        s = rng.normal(size=n)
        if n:
            s[0] = np.nan
        lab = (rng.random(n) > 0.5).astype(np.int64)
        if n:
            lab[0] = -1
        ids = [f"id{start + i}" for i in range(n)]
        extra = {"rank": np.arange(start, start + n, dtype=np.int64), "p": rng.random(n)}
        out.append((s, lab, {"id": ids}, extra))
        start += n
    return out


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "json", "parquet", "npy"])
def test_round_trip_every_output_format(tmp_path, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    path = tmp_path / f"out.{fmt}"
    chunks = _chunks_for_output()
    with ScoreWriter(path) as w:
        for s, lab, pt, extra in chunks:
            w.write(s, lab, passthrough=pt, extra=extra)
    assert os.listdir(tmp_path) == [path.name]
    score = np.concatenate([c[0] for c in chunks])
    label = np.concatenate([c[1] for c in chunks])
    ids = [i for c in chunks for i in c[2]["id"]]
    rank = np.concatenate([c[3]["rank"] for c in chunks])
    p = np.concatenate([c[3]["p"] for c in chunks])

    def same(a, b):
        return np.array_equal(np.asarray(a, dtype=np.float64), b, equal_nan=True)

    if fmt in ("csv", "tsv"):
        import csv

        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f, delimiter="\t" if fmt == "tsv" else ","))
        assert rows[0] == ["id", "score", "label", "rank", "p"]
        cols = list(zip(*rows[1:], strict=True))
        assert list(cols[0]) == ids
        assert [v == "" for v in cols[1]] == np.isnan(score).tolist()  # a missing score is an empty cell
        assert same([float(v or "nan") for v in cols[1]], score)
        assert [int(v) for v in cols[2]] == label.tolist()
        assert [int(v) for v in cols[3]] == rank.tolist() and same([float(v) for v in cols[4]], p)
    elif fmt in ("jsonl", "json"):
        text = path.read_text()
        recs = [json.loads(ln) for ln in text.splitlines()] if fmt == "jsonl" else json.loads(text)
        assert list(recs[0]) == ["id", "score", "label", "rank", "p"]
        assert [r["id"] for r in recs] == ids
        assert same([np.nan if r["score"] is None else r["score"] for r in recs], score)
        assert [r["label"] for r in recs] == label.tolist() and [r["rank"] for r in recs] == rank.tolist()
        assert same([r["p"] for r in recs], p)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        t = pq.read_table(path)
        assert t.column_names == ["id", "score", "label", "rank", "p"]
        assert t.column("id").to_pylist() == ids
        assert [v is None for v in t.column("score").to_pylist()] == np.isnan(score).tolist()  # null
        assert same(t.column("score").to_numpy(), score) and t.column("label").to_pylist() == label.tolist()
        assert t.column("rank").to_pylist() == rank.tolist() and same(t.column("p").to_numpy(), p)
    else:
        a = np.load(path)
        assert a.dtype.names == ("score", "label", "rank", "p")  # passthrough is dropped for npy
        assert a.shape == (len(ids),)
        assert same(a["score"], score) and a["label"].tolist() == label.tolist()
        assert a["rank"].tolist() == rank.tolist() and same(a["p"], p)


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_json_output_with_awkward_passthrough_values(tmp_path, fmt):
    # "},{" inside a value defeats the one-dumps-per-batch split: the writer must notice and fall back
    values = ['a"},{"b', {"nested": [{"x": 1}, {"y": 2}]}, "line\nbreak", None]
    path = tmp_path / f"o.{fmt}"
    scores = np.array([1.0, np.nan, np.inf, 0.5])
    write_scores(path, scores, np.array([1, -1, 1, 0]), passthrough={"v": values})
    text = path.read_text()
    recs = [json.loads(ln) for ln in text.splitlines()] if fmt == "jsonl" else json.loads(text)
    assert [r["v"] for r in recs] == values
    assert [r["score"] for r in recs] == [1.0, None, None, 0.5]  # JSON has no NaN/inf


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json", "parquet", "npy"])
def test_writer_without_rows_gives_a_valid_file(tmp_path, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    path = tmp_path / f"e.{fmt}"
    with ScoreWriter(path):
        pass
    if fmt == "csv":
        assert path.read_text() == "score,label\n"
    elif fmt == "json":
        assert json.loads(path.read_text()) == []
    elif fmt == "jsonl":
        assert path.read_text() == ""
    elif fmt == "npy":
        assert np.load(path).shape == (0,)
    else:
        import pyarrow.parquet as pq

        assert pq.read_table(path).num_rows == 0


def test_written_csv_reads_back_with_read_dataset(tmp_path):
    path = tmp_path / "o.csv"
    s = np.array([0.1, 1 / 3, np.nan])
    write_scores(path, s, np.array([0, 1, -1]), passthrough={"id": ["a", "b", "c"]})
    d = read_dataset(path, columns=["score"], nan_policy="drop")
    assert d.X[:, 0].tolist() == [0.1, 1 / 3]  # repr() floats round-trip exactly
    assert d.passthrough == {"id": ["a", "b", "c"], "label": ["0", "1", "-1"]}


def test_check_output_path(tmp_path):
    assert check_output_path(tmp_path / "o.CSV") == "csv"
    assert check_output_path(tmp_path / "o.out", fmt="parquet") == "parquet"
    data_error("does not exist", check_output_path, tmp_path / "no" / "dir" / "o.csv")
    data_error("is a directory", check_output_path, tmp_path)
    data_error("cannot write 'npz' output", check_output_path, tmp_path / "o.npz")
    data_error("unknown file extension", check_output_path, tmp_path / "o.xlsx")
    data_error("does not exist", ScoreWriter, tmp_path / "missing" / "o.csv")
    (tmp_path / "f").write_text("x")
    data_error("is not a directory", check_output_path, tmp_path / "f" / "o.csv")


def test_failed_write_leaves_no_temp_file_and_keeps_old_output(tmp_path):
    out = tmp_path / "o.csv"
    out.write_text("old\n")
    with pytest.raises(RuntimeError), ScoreWriter(out) as w:
        w.write(np.array([1.0]), np.array([1]))
        raise RuntimeError("boom")
    assert out.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["o.csv"]
    w = ScoreWriter(out)
    with pytest.raises(ValueError, match="labels must have shape"):
        w.write(np.array([1.0, 2.0]), np.array([1]))
    assert os.listdir(tmp_path) == ["o.csv"]
    with pytest.raises(ValueError, match="aborted"):
        w.close()
    with pytest.raises(ValueError, match="same columns"), ScoreWriter(tmp_path / "p.jsonl") as w2:
        w2.write(np.array([1.0]), np.array([0]), passthrough={"id": ["a"]})
        w2.write(np.array([1.0]), np.array([0]))
    assert sorted(os.listdir(tmp_path)) == ["o.csv"]


def test_passthrough_named_score_is_refused(tmp_path):
    e = data_error(
        "would clash",
        write_scores,
        tmp_path / "o.csv",
        np.array([1.0]),
        np.array([0]),
        passthrough={"score": [1]},
    )
    assert e.path == str(tmp_path / "o.csv")
    assert os.listdir(tmp_path) == []


def test_output_file_gets_normal_permissions(tmp_path):
    out = tmp_path / "o.csv"
    write_scores(out, np.array([1.0]), np.array([0]))
    umask = os.umask(0)
    os.umask(umask)
    assert (out.stat().st_mode & 0o777) == (0o666 & ~umask)


def _write_to_pipe(fmt: str, chunks: list) -> bytes:
    """Write the chunks through a real (unseekable) pipe, as `adcore run -o -` does to stdout."""
    import threading

    read_fd, write_fd = os.pipe()
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(os.fdopen(read_fd, "rb").read()))
    reader.start()
    with os.fdopen(write_fd, "wb") as pipe:
        with ScoreWriter("<stdout>", fmt, stream=pipe) as w:
            for s, lab, pt, extra in chunks:
                w.write(s, lab, passthrough=pt, extra=extra)
        assert not pipe.closed  # the caller owns the stream
    reader.join(timeout=10)
    return received[0]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "json", "npy", "parquet"])
def test_stream_output_is_the_file_output(tmp_path, fmt):
    # npy and Parquet need the whole file (row count in the header, footer): spooled, then copied
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    chunks = _chunks_for_output()
    path = tmp_path / f"out.{fmt}"
    with ScoreWriter(path) as w:
        for s, lab, pt, extra in chunks:
            w.write(s, lab, passthrough=pt, extra=extra)
    assert _write_to_pipe(fmt, chunks) == path.read_bytes()
    assert os.listdir(tmp_path) == [path.name]


def test_stream_output_needs_a_format():
    import io

    data_error("needs a format", ScoreWriter, "<stdout>", None, stream=io.BytesIO())
    data_error("cannot write 'npz'", ScoreWriter, "<stdout>", "npz", stream=io.BytesIO())


# --------------------------------------------------------------------------- optional dependencies


def _run(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)


def test_import_does_not_load_pandas_or_pyarrow():
    r = _run("import sys, adcore.data; print(sorted(m for m in ('pandas', 'pyarrow') if m in sys.modules))")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_public_names_stay_importable_from_adcore_data():
    # The readers and writers live in adcore.io; adcore.data is the public path and must keep these.
    import adcore
    import adcore.data as data

    assert sorted(data.__all__) == sorted(
        [
            "NAN_POLICIES",
            "NA_TOKENS",
            "SUPPORTED_INPUT_FORMATS",
            "SUPPORTED_OUTPUT_FORMATS",
            "Dataset",
            "ScoreWriter",
            "check_output_path",
            "format_from_path",
            "iter_dataset_chunks",
            "read_dataset",
            "write_scores",
        ]
    )
    assert all(hasattr(data, name) for name in data.__all__)
    assert adcore.Dataset is data.Dataset
    assert adcore.read_dataset is data.read_dataset


def test_parquet_without_pyarrow_is_a_missing_dependency_error(tmp_path):
    p = tmp_path / "t.parquet"
    p.write_bytes(b"PAR1")
    code = (
        (
            "import sys; sys.modules['pyarrow'] = None; sys.modules['pyarrow.parquet'] = None\n"
            "from adcore.data import read_dataset, ScoreWriter\n"
            "from adcore.errors import MissingDependencyError\n"
            "for f in (lambda: read_dataset(sys.argv[1]), lambda: ScoreWriter(sys.argv[2])):\n"
            "    try:\n        f()\n    except MissingDependencyError as e:\n        print(e)\n"
        )
        .replace("sys.argv[1]", repr(str(p)))
        .replace("sys.argv[2]", repr(str(tmp_path / "o.parquet")))
    )
    r = _run(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "reading Parquet needs pyarrow: pip install 'adcore[parquet]'",
        "writing Parquet needs pyarrow: pip install 'adcore[parquet]'",
    ]
    assert not (tmp_path / "o.parquet").exists()
    assert issubclass(MissingDependencyError, ImportError)
