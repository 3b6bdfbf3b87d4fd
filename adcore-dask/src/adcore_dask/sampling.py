"""Fit on a sample: which rows each partition gives, and the one dataset they make.

The draw is :func:`adcore.services.executors.sample_indices` over global input-row numbers
(partition after partition, files in sorted order), seeded by the detector spec's seed. So
``fit --sample N`` takes the same rows on any cluster, with any partition size, as the local
executor takes from the same single file; and rows the NaN policy drops stay out, as there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from adcore.data import Dataset
from adcore.errors import DataError, SchemaMismatchError
from adcore.services.executors import sample_indices

from adcore_dask.inputs import Partition
from adcore_dask.tasks import Taken


def sample_plan(
    partitions: Sequence[Partition], n: int | None, seed: int | None
) -> list[tuple[Partition, np.ndarray | None]]:
    """The partitions that give rows, each with its sorted row positions (None = every row).

    Partitions must carry ``n_rows``. Without ``n`` (or with ``n`` at least the total) every
    row of every partition is taken, without shipping an index per row.
    """
    counts = [int(p.n_rows or 0) for p in partitions]
    if n is None or n >= sum(counts):
        return [(p, None) for p in partitions]
    drawn = sample_indices(counts, n, seed)
    return [(p, rows) for p, rows in zip(partitions, drawn, strict=True) if rows.size]


def assemble(taken: Sequence[Taken], source: str) -> Dataset:
    """The partitions' rows concatenated in partition order, as one training Dataset.

    Every partition must have the same feature names (files with other columns are refused
    here, naming the first that differs, rather than fitted on misaligned columns).
    """
    ordered = sorted(taken, key=lambda t: t.index)
    names = next((t.feature_names for t in ordered if t.feature_names), [])
    for t in ordered:
        if t.feature_names and t.feature_names != names:
            raise SchemaMismatchError(
                f"{t.url}: has the feature columns {t.feature_names[:5]}, {ordered[0].url} has "
                f"{names[:5]}; every input file must have the same feature columns"
            )
    blocks = [t.X for t in ordered if t.X.shape[0]]
    X = np.concatenate(blocks) if blocks else np.empty((0, len(names)))
    if X.shape[0] < 2:
        raise DataError(f"need at least 2 rows to fit, got {X.shape[0]}", path=source)
    return Dataset(np.ascontiguousarray(X, dtype=np.float64), list(names), source=source)
