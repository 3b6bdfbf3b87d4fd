"""Numeric numpy <-> Arrow conversion without pyarrow's pandas shim (adcore.io.arrow_arrays)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")

from adcore.io.arrow_arrays import from_numpy, to_numpy  # noqa: E402


def test_plain_arrays_round_trip_exactly_including_slices_and_chunks():
    values = np.random.default_rng(0).normal(size=1000)
    arrow = from_numpy(values, pa)
    assert arrow.type == pa.float64() and arrow.null_count == 0
    np.testing.assert_array_equal(to_numpy(arrow), values)
    np.testing.assert_array_equal(to_numpy(arrow.slice(17, 300)), values[17:317])  # an offset
    labels = np.arange(10, dtype=np.int64)
    assert from_numpy(labels, pa).type == pa.int64()
    np.testing.assert_array_equal(to_numpy(from_numpy(labels, pa).slice(3)), labels[3:])
    chunked = pa.chunked_array([arrow.slice(0, 10), arrow.slice(10, 5)])
    np.testing.assert_array_equal(to_numpy(chunked), values[:15])
    assert to_numpy(pa.chunked_array([], pa.float64())).shape == (0,)
    strided = values[::2]  # not contiguous: copied, not misread
    np.testing.assert_array_equal(to_numpy(from_numpy(strided, pa)), strided)


def test_nulls_and_other_types_take_pyarrows_own_path():
    with_null = pa.array([1.0, None, 3.0])
    np.testing.assert_array_equal(to_numpy(with_null), [1.0, np.nan, 3.0])
    np.testing.assert_array_equal(to_numpy(pa.array([1, 2], pa.int32())), [1, 2])
    scores = np.array([0.5, np.nan, 2.0])
    assert from_numpy(scores, pa, nan_is_null=True).null_count == 1  # a missing score stays missing
    assert from_numpy(scores, pa).null_count == 0  # NaN kept as a value unless asked
    assert from_numpy([1.0, 2.0], pa).type == pa.float64()
    assert from_numpy(np.array([1, 2], dtype=np.int32), pa).type == pa.int32()
    swapped = np.array([1.5, -2.25], dtype=">f8")  # not the machine's byte order: swapped first
    assert from_numpy(swapped, pa).to_pylist() == [1.5, -2.25]


def test_a_parquet_score_run_never_imports_pandas(tmp_path):
    pytest.importorskip("pandas")  # the point: installed, yet not imported
    import pyarrow.parquet as pq

    rng = np.random.default_rng(1)
    pq.write_table(pa.table({f"f{j}": rng.normal(size=500) for j in range(3)}), tmp_path / "in.parquet")
    code = (
        "import sys\n"
        "from adcore.data import ScoreWriter, iter_dataset_chunks\n"
        f"with ScoreWriter({str(tmp_path / 'out.parquet')!r}) as w:\n"
        f"    for ds in iter_dataset_chunks({str(tmp_path / 'in.parquet')!r}, chunk_size=200):\n"
        "        s = ds.X.sum(axis=1)\n"
        "        w.write(s, (s > 1).astype('int64'))\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr
    written = pq.read_table(tmp_path / "out.parquet")
    assert written.num_rows == 500 and written.schema.names == ["score", "label"]
