"""Options shared by several commands (run, fit, bench...), defined once."""

from __future__ import annotations

from enum import Enum

import typer


class NanPolicy(str, Enum):
    error = "error"
    drop = "drop"
    median = "median"


INPUT = typer.Option(..., "--input", "-i", help="Data file: csv, tsv, parquet, npy, npz, json, jsonl.")
OUTPUT = typer.Option(
    None,
    "--output",
    "-o",
    help="Scores file (its extension names the format: csv, tsv, parquet, jsonl, json, npy), "
    "or - for stdout; without it the rows go to stdout.",
)
FORMAT = typer.Option(
    None,
    "--format",
    "-f",
    metavar="<format>",
    help="Format of the rows: csv (default on stdout), tsv, jsonl, json, parquet, npy; "
    "for a file it must match the extension.",
)
COLUMNS = typer.Option(
    None, "--columns", help="Comma-separated feature columns; other columns pass through to the output."
)
NO_HEADER = typer.Option(False, "--no-header", help="The CSV has no header row (default: detected).")
NAN = typer.Option(NanPolicy.error, "--nan", help="Missing values: error, drop the row, or fill the median.")
CONTAMINATION = typer.Option(
    None, "--contamination", "-c", help="Expected share of anomalies, in (0, 0.5] (default 0.1)."
)
THRESHOLD = typer.Option(
    None,
    "--threshold",
    help="contamination (default) | mad[:k] | iqr[:k] | zscore[:k] | fixed:VALUE | fdr:Q "
    "(Benjamini-Hochberg at false-discovery rate Q on conformal p-values); "
    "a vote ensemble defaults to a majority (fixed:0.5).",
)
OUTPUT_P_VALUES = typer.Option(
    False,
    "--output-p-values",
    help="Add a p_value column: the row's conformal p-value (small = anomalous), from calibration "
    "scores kept at fit (out-of-fold; docs/thresholds.md).",
)
PARAM = typer.Option(None, "--param", "-p", help="Detector parameter KEY=VALUE (repeatable).")
SEED = typer.Option(
    None,
    "--seed",
    help="Random seed (random_state); the summary shows the seed used, to repeat a run.",
)
JSON = typer.Option(False, "--json", help="Print a JSON summary on stdout.")
JSON_INSTEAD_OF_ROWS = typer.Option(
    False,
    "--json",
    help="Print a JSON summary on stdout instead of the rows; add --output FILE to write the rows too.",
)


EXECUTOR = typer.Option(
    None,
    "--executor",
    "-x",
    help="Who runs the job: local (default: one process, one file), or a plugin's executor, e.g. dask "
    "(a local cluster) or dask://HOST:PORT (default: $ADCORE_EXECUTOR, else local).",
)
STORAGE_OPTION = typer.Option(
    None,
    "--storage-option",
    help="KEY=VALUE for remote inputs and outputs (s3://), on top of the AWS_* variables; repeatable.",
)
ON_BAD_FILE = typer.Option(
    "error",
    "--on-bad-file",
    help="Executors reading many files: error (stop, naming the file) or skip (list it in the summary).",
)


#: What --algo means when it is not given: the label-free choice of detectors (core:auto),
#: or its time-series counterpart when --time or --series says the data is a time series.
DEFAULT_ALGO = "auto"
DEFAULT_TS_ALGO = "ts:auto"


def algo_or_default(algo: str | None, time_column: str | None, series_column: str | None) -> str:
    """``--algo`` as given, else ``auto`` (``ts:auto`` with ``--time``/``--series``)."""
    if algo:
        return algo
    return DEFAULT_TS_ALGO if time_column or series_column else DEFAULT_ALGO


def split_pairs(pairs: list[str] | None, option: str) -> dict[str, str]:
    """``["key=a", "endpoint_url=http://..."]`` -> a dict; a pair without '=' is refused by name."""
    from adcore.errors import ParameterError

    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"{option} expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = value
    return out


def split_columns(columns: str | None) -> list[str] | None:
    """``"a, b"`` -> ``["a", "b"]``; None (the option not given) -> None, meaning "the default".

    An empty list or an empty name (``""``, ``"a,,b"``, ``"a,"``) is a typo, refused rather than
    read as "the default columns" or silently skipped.
    """
    from adcore.errors import ParameterError

    if columns is None:
        return None
    names = [c.strip() for c in columns.split(",")]
    if not all(names):
        raise ParameterError(
            f"empty column name in {columns!r}: list the column names separated by single commas, e.g. a,b"
        )
    return names


def header_flag(no_header: bool) -> bool | None:
    return False if no_header else None


COMBINE = typer.Option(
    None,
    "--combine",
    help="Ensembles: consensus (default), average, max, median, aom, moa, weighted, vote, stack.",
)
NORMALIZE = typer.Option(None, "--normalize", help="Ensembles: rank (default), zscore, minmax, unify, none.")
JOBS = typer.Option(
    None,
    "--jobs",
    "-j",
    help="Ensembles: members fitted at once, in threads (default -1 = one per core; 1 = one after "
    "another). For pure-Python members, --param backend=processes uses worker processes.",
)
LABELS = typer.Option(
    None,
    "--labels",
    help="Ensembles: a column of known labels (1 anomaly, 0 normal, empty/-1 unknown) for stacking; "
    "it is never used as a feature.",
)


def read_input(
    path: str, columns: str | None, no_header: bool, nan_policy: str, labels: str | None = None
) -> tuple[object, object]:
    """Read the features (and, with ``labels``, the label column kept out of them)."""
    import numpy as np

    from adcore.data import read_dataset
    from adcore.errors import DataError
    from adcore.io.columns import peek_columns

    selected = split_columns(columns)
    if labels and selected is None:
        selected = [c for c in peek_columns(path, no_header) if c != labels]
    dataset = read_dataset(
        path, columns=selected, header=header_flag(no_header), nan_policy=nan_policy, min_rows=2
    )
    if not labels:
        return dataset, None
    if labels not in dataset.passthrough:
        raise DataError(
            f"no label column {labels!r} (columns: {', '.join(dataset.passthrough) or 'none'})", path=path
        )
    raw = dataset.passthrough[labels]
    y = np.full(len(raw), -1.0)
    for i, value in enumerate(raw):
        text = str(value).strip() if value is not None else ""
        if text in ("", "-1", "nan", "NaN", "None", "null"):
            continue
        try:
            y[i] = float(text)
        except ValueError:
            raise DataError(f"label {text!r} is not 1, 0 or empty", path=path, row=i, column=labels) from None
    if dataset.kept_rows is not None:
        y = y[dataset.kept_rows]
    return dataset, y


TIME = typer.Option(
    None,
    "--time",
    help="Time column (ISO 8601 or epoch seconds): score each record causally with a time-series "
    "detector (--algo ts:auto, ts:discord, ts:seasonal, ts:gaussian, ts:spectral, ts:sub-core:hbos, "
    "ts:extreme); value column: --columns (default 'value'); rows out of order are sorted, gaps reported.",
)
SERIES = typer.Option(
    None, "--series", help="Series column: one time-series model per value of it (with --time)."
)
