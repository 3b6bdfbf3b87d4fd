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
    help="Scores file; the format follows the extension: csv, parquet, jsonl, json, npy.",
)
COLUMNS = typer.Option(
    None, "--columns", help="Comma-separated feature columns; other columns pass through to the output."
)
NO_HEADER = typer.Option(False, "--no-header", help="The CSV has no header row (default: detected).")
NAN = typer.Option(NanPolicy.error, "--nan", help="Missing values: error, drop the row, or fill the median.")
CONTAMINATION = typer.Option(0.1, "--contamination", "-c", help="Expected share of anomalies, in (0, 0.5].")
THRESHOLD = typer.Option(
    "contamination", "--threshold", help="contamination | mad[:k] | iqr[:k] | zscore[:k] | fixed:VALUE"
)
PARAM = typer.Option(None, "--param", "-p", help="Detector parameter KEY=VALUE (repeatable).")
SEED = typer.Option(None, "--seed", help="Random seed, passed as random_state.")
JSON = typer.Option(False, "--json", help="Print a JSON summary on stdout.")


def split_columns(columns: str | None) -> list[str] | None:
    if not columns:
        return None
    return [c.strip() for c in columns.split(",") if c.strip()]


def header_flag(no_header: bool) -> bool | None:
    return False if no_header else None
