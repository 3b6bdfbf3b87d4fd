"""Column names of an input file, for callers that must pick columns before reading rows.

Used to keep a label column out of the features (``adcore run --labels``, ``adcore
bench`` on CSV datasets): services and the CLI both need it, so it lives here, not in
the CLI.
"""

from __future__ import annotations

import csv
from pathlib import Path


def peek_columns(path: str, no_header: bool) -> list[str]:
    """Column names of a file without parsing its rows (CSV/TSV header line, else a full read)."""
    from adcore.data import format_from_path, read_dataset

    fmt = format_from_path(path)
    if fmt in ("csv", "tsv") and not no_header and Path(path).is_file():
        with open(path, newline="", encoding="utf-8-sig") as handle:
            first = next(csv.reader(handle, delimiter="\t" if fmt == "tsv" else ","), [])
        return [c.strip() for c in first]
    dataset = read_dataset(path, header=False if no_header else None, nan_policy="median")
    return list(dataset.feature_names) + list(dataset.passthrough)
