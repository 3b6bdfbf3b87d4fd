"""The pieces that need no cluster: executor text, listing, partitions, part formats, and the
core's partition reader (same rows, checks and row numbers as reading the whole file)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from adcore.data import iter_dataset_chunks
from adcore.errors import DataError, ParameterError
from adcore.io.partitions import iter_partition_chunks, parquet_row_group_sizes

from adcore_dask.cluster import parse_executor
from adcore_dask.inputs import InputFile, list_inputs, parquet_partitions
from adcore_dask.outputs import output_format, prepare_output


def test_executor_text() -> None:
    assert parse_executor("dask").address is None
    assert parse_executor("dask://?n_workers=3").n_workers == 3
    spec = parse_executor("dask://sched:8786?timeout=2.5&partition_rows=10")
    assert (spec.address, spec.timeout, spec.partition_rows) == ("tcp://sched:8786", 2.5, 10)
    assert parse_executor("dask://sched").address == "tcp://sched:8786"
    assert parse_executor("dask://sched?worker_timeout=120").worker_timeout == 120.0
    assert parse_executor("dask+tls://sched:1").address == "tls://sched:1"
    for bad, match in [
        ("dask://h:1?workers=2", "unknown option 'workers'"),
        ("dask://h:1?n_workers=2", "applies to a local cluster"),
        ("dask://h:x", "port is not a number"),
        ("dask://?timeout=-1", "must be positive"),
        ("dask://h:1/path", "no path"),
    ]:
        with pytest.raises(ParameterError, match=match):
            parse_executor(bad)


def test_listing_sorted_recursive_and_filtered(tmp_path: Path) -> None:
    (tmp_path / "d" / "x=1").mkdir(parents=True)
    for name in ("d/b.csv", "d/a.parquet", "d/x=1/c.pq", "d/_SUCCESS", "d/.hidden.csv", "d/notes.txt"):
        (tmp_path / name).write_bytes(b"1")
    got = [
        (Path(f.url).relative_to(tmp_path).as_posix(), f.fmt) for f in list_inputs(str(tmp_path / "d"), {})
    ]
    assert got == [("d/a.parquet", "parquet"), ("d/b.csv", "csv"), ("d/x=1/c.pq", "parquet")]
    assert [f.fmt for f in list_inputs(str(tmp_path / "d" / "*.csv"), {})] == ["csv"]
    with pytest.raises(DataError, match="no such file"):
        list_inputs(str(tmp_path / "missing"), {})
    with pytest.raises(DataError, match=r"cannot read \.txt"):
        list_inputs(str(tmp_path / "d" / "notes.txt"), {})
    (tmp_path / "e").mkdir()
    with pytest.raises(DataError, match="holds no"):
        list_inputs(str(tmp_path / "e"), {})


def test_parquet_partitions_follow_row_groups() -> None:
    f = InputFile("x.parquet", "parquet", 1)
    parts = parquet_partitions(f, [3, 3, 3, 10, 1], 6, start=7)
    assert [(p.index, p.row_groups, p.first_row, p.n_rows) for p in parts] == [
        (7, (0, 1), 0, 6),
        (8, (2,), 6, 3),
        (9, (3,), 9, 10),
        (10, (4,), 19, 1),
    ]
    (empty,) = parquet_partitions(f, [], 6, start=0)
    assert empty.row_groups is None and empty.n_rows == 0


def test_output_format_rule(tmp_path: Path) -> None:
    assert output_format("out/", None) == "parquet"
    assert output_format("scores.csv/", None) == "csv"
    assert output_format("s3://b/scores/", "jsonl") == "jsonl"
    with pytest.raises(DataError, match="not 'npy'"):
        output_format("out", "npy")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file"):
        prepare_output(str(tmp_path / "file"), None, {})
    out = prepare_output(str(tmp_path / "new" / "dir"), None, {})
    assert Path(out.url).is_dir() and out.part_name(3) == "part-00003.parquet"
    with pytest.raises(DataError, match="inside the input directory"):
        prepare_output(str(tmp_path / "new" / "dir" / "scores"), None, {}, input_uri=str(tmp_path / "new"))
    assert not (tmp_path / "new" / "dir" / "scores").exists()
    with pytest.raises(DataError, match="inside the input directory"):
        prepare_output("s3://b/events/day=1/scores/", None, {}, input_uri="s3://b/events/*/*.parquet")


def _parquet(path: Path, n: int) -> np.ndarray:
    X = np.random.default_rng(0).normal(size=(n, 3))
    X[7, 1] = np.nan
    pq.write_table(
        pa.table({"id": list(range(n)), "a": X[:, 0], "b": X[:, 1], "c": X[:, 2]}), path, row_group_size=10
    )
    return X


def test_partition_reader_matches_the_file_reader(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    _parquet(path, 45)
    assert parquet_row_group_sizes(str(path), "x") == [10, 10, 10, 10, 5]
    (whole,) = iter_dataset_chunks(path, chunk_size=100, columns=["a", "b", "c"], nan_policy="drop")
    parts = [
        next(iter_partition_chunks(str(path), "x", "parquet", chunk_size=100, columns=["a", "b", "c"],
                                   nan_policy="drop", row_groups=groups, first_row=first))
        for groups, first in (((0, 1), 0), ((2, 3, 4), 20))
    ]  # fmt: skip
    assert [p.first_row for p in parts] == [0, 20]
    assert np.array_equal(np.concatenate([p.X for p in parts]), whole.X)
    assert parts[0].passthrough["id"] == list(range(20)) and 7 not in parts[0].kept_rows
    with pytest.raises(DataError, match=r"x, row 7, column 'b': missing value"):
        list(iter_partition_chunks(str(path), "x", "parquet", chunk_size=4, columns=["a", "b", "c"]))
    with pytest.raises(DataError, match="median"):
        iter_partition_chunks(str(path), "x", "parquet", chunk_size=4, nan_policy="median")


def test_csv_partition_from_a_file_object() -> None:
    text = b"id,a,b\nr0,1,2\n\nr1,3,4\nr2,x,5\n"
    rows = iter_partition_chunks(io.BytesIO(text), "s3://b/k.csv", "csv", chunk_size=3, columns=["a", "b"])
    first = next(rows)
    assert first.X.tolist() == [[1.0, 2.0], [3.0, 4.0]] and first.passthrough == {"id": ["r0", "r1"]}
    with pytest.raises(DataError, match=r"s3://b/k.csv, line 5, column 'a': 'x' is not a number"):
        next(rows)
    headerless = iter_partition_chunks(io.BytesIO(b"1,2\n3,4\n"), "h.csv", "csv", chunk_size=10, header=False)
    assert next(headerless).X.tolist() == [[1.0, 2.0], [3.0, 4.0]]
