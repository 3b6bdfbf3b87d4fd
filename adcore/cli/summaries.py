"""The human summaries of ``run``, ``fit`` and ``score`` on stderr: one look at what happened.

Each says how many rows were anomalous, the threshold in the same precision as the scores, how
long the fit took (and, apart, how long importing the plugin's library took), and the seed
used, so any run can be repeated exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from adcore.cli.console import stderr_console
from adcore.cli.text import NumberFormat, plural


def seconds(value: float) -> str:
    """``0.0094s``, ``0.41s``, ``3.8s``, ``12.3s``, ``212s``: enough digits to compare, no more."""
    if value < 10:
        return f"{value:.2g}s"
    return f"{value:.3g}s" if value < 100 else f"{value:.0f}s"


def seed_used(metadata: Mapping[str, Any], params: Mapping[str, Any]) -> int | None:
    """The seed a fit used: the one recorded in the metadata, else the one asked for."""
    for seed in (metadata.get("seed"), metadata.get("random_state"), params.get("random_state")):
        if isinstance(seed, int) and not isinstance(seed, bool):
            return seed
    return None


def seed_line(seed: int | None) -> str | None:
    """How to repeat the run; None when no seed is known (nothing random, or not recorded)."""
    if seed is None:
        return None
    return f"seed {seed} (repeat with --seed {seed})"


def fit_time(metadata: Mapping[str, Any], algorithm: str) -> str:
    """``fit 0.41s (+3.8s importing pyod)``: a library's import is not the detector's speed."""
    text = f"fit {seconds(float(metadata.get('fit_seconds') or 0.0))}"
    imported = metadata.get("import_seconds")
    if imported:
        plugin, colon, _ = algorithm.partition(":")
        text += f" (+{seconds(float(imported))} importing{' ' + plugin if colon else ''})"
    return text


def anomalous_rows(n_anomalies: int, n_rows: int) -> str:
    """``183 of 1831 rows anomalous (10.0%)``."""
    share = n_anomalies / max(n_rows, 1)
    return f"{n_anomalies} of {plural(n_rows, 'row')} anomalous ({share:.1%})"


def top_table(anomalies: Sequence[Mapping[str, Any]], number: NumberFormat) -> Any:
    """The most anomalous rows: row, score (in the summary's precision), confidence."""
    from rich.table import Table

    table = Table(title=f"top {len(anomalies)}", title_justify="left")
    for column in ("row", "score", "confidence"):
        table.add_column(column, justify="right")
    for a in anomalies:
        table.add_row(str(a["index"]), number(a["score"]), f"{a['confidence']:.2f}")
    return table


def print_lines(lines: Sequence[Any]) -> None:
    """Print the summary's lines and tables on stderr, skipping the ones that do not apply."""
    console = stderr_console()
    for line in lines:
        if line is not None:  # a line is never wrapped: stderr may be a log, not an 80-column terminal
            console.print(line, soft_wrap=isinstance(line, str))
