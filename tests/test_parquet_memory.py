"""Reading Parquet in chunks holds one chunk's worth of memory, not the file.

pyarrow's ``ParquetFile`` pre-buffers by default: ``iter_batches`` then fetches every column
chunk of the file before the first batch, so a 10M x 20 file took 2 GB to score in chunks of
100,000 rows. Arrow's own allocation counter shows it without timing or RSS noise.
"""

from __future__ import annotations

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def test_chunked_parquet_reading_is_bounded_by_the_chunk_not_the_file(tmp_path):
    from adcore.data import iter_dataset_chunks

    rows, features, groups = 400_000, 20, 16  # 64 MB of float64 in 16 row groups
    rng = np.random.default_rng(0)
    path = tmp_path / "big.parquet"
    with pq.ParquetWriter(path, pa.schema([(f"f{j}", pa.float64()) for j in range(features)])) as w:
        for _ in range(groups):
            block = rng.normal(size=(rows // groups, features))
            w.write_table(pa.table({f"f{j}": block[:, j] for j in range(features)}))
    data_bytes = rows * features * 8
    peak, seen = 0, 0
    for chunk in iter_dataset_chunks(str(path), chunk_size=10_000):
        peak = max(peak, pa.total_allocated_bytes())
        seen += chunk.n_samples
    assert seen == rows
    held, size = peak / 2**20, data_bytes / 2**20
    assert peak < data_bytes / 4, f"Arrow held {held:.0f} MiB while reading a {size:.0f} MiB file"
