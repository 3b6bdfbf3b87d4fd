"""``adcore run --time COLUMN [--series COLUMN]``: one causal time-series model per series.

The rows of a file are grouped by the ``--series`` column (one group without it), each
group is put in time order (a file out of order is sorted, and said so), the detector is
fitted on each series' warm-up (NAB's rule by default: the first 15% of its records, at
most 750, at least ``MIN_WARMUP``) and scores every later record causally. Every input row
gets a score, in input order; warm-up rows score 0. Gaps in time are allowed and reported
(a step above 1.5 times the series' median step: one missing record shows).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from adcore.errors import DataError, ParameterError

MIN_WARMUP = 20
WARMUP_FRACTION = 0.15
MAX_WARMUP = 750


def parse_times(raw: Sequence[Any], column: str) -> np.ndarray:
    """Timestamps as int64 nanoseconds since the epoch: ISO 8601 text (an offset or ``Z`` is
    converted to UTC) or epoch numbers (seconds; milliseconds when above 1e11)."""
    out = np.empty(len(raw), dtype=np.int64)
    for i, value in enumerate(raw):
        text = str(value).strip() if value is not None else ""
        if not text:
            raise DataError(f"time column {column!r}: empty timestamp at row {i + 1}")
        try:
            number = float(text)
        except ValueError:
            number = None
        if number is not None and math.isfinite(number):
            seconds = number / 1000.0 if abs(number) > 1e11 else number
            out[i] = round(seconds * 1e9)
            continue
        try:
            stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise DataError(
                f"time column {column!r}: {text!r} at row {i + 1} is neither ISO 8601 nor an epoch number"
            ) from None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=timezone.utc)
        delta = stamp - datetime(1970, 1, 1, tzinfo=timezone.utc)
        out[i] = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    return out


def default_warmup(n: int) -> int:
    return max(MIN_WARMUP, min(math.floor(WARMUP_FRACTION * n), MAX_WARMUP))


@dataclass
class SeriesReport:
    """What happened to one series: its size, warm-up, order and gaps."""

    name: str
    records: int
    warmup: int
    sorted_rows: bool
    gaps: int
    largest_gap_s: float
    state_bytes: int


@dataclass
class TimeSeriesResult:
    scores: np.ndarray
    labels: np.ndarray
    threshold: float
    algorithm: str
    series: list[SeriesReport] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """JSON-ready: counts, threshold and one entry per series (``adcore run --json``)."""
        return {
            "algorithm": self.algorithm,
            "n_records": int(self.scores.size),
            "n_anomalies": int((self.labels == 1).sum()),
            "threshold": self.threshold,
            "series": [asdict(s) for s in self.series],
        }

    def summary_lines(self) -> list[str]:
        n = self.scores.size
        flagged = int((self.labels == 1).sum())
        lines = [
            f"{self.algorithm}: {flagged} of {n} records at or above {self.threshold:g}, "
            f"{len(self.series)} series, warm-up {sum(s.warmup for s in self.series)} records (score 0)"
        ]
        resorted = [s.name for s in self.series if s.sorted_rows]
        if resorted:
            lines.append(f"sorted by time: {', '.join(resorted[:5])}{' ...' if len(resorted) > 5 else ''}")
        gappy = [s for s in self.series if s.gaps]
        if gappy:
            worst = max(gappy, key=lambda s: s.largest_gap_s)
            lines.append(
                f"gaps: {sum(s.gaps for s in gappy)} in {len(gappy)} series "
                f"(largest {worst.largest_gap_s:g} s, series {worst.name})"
            )
        return lines


def score_series_table(
    algo: str,
    values: np.ndarray,
    times: np.ndarray,
    series: Sequence[Any] | None,
    *,
    params: dict[str, Any] | None = None,
    threshold: float | None = None,
    warmup: int | None = None,
) -> TimeSeriesResult:
    """Score every row: one detector per series, fitted on its warm-up, causal afterwards."""
    from adcore.timeseries.detectors import DEFAULT_THRESHOLD, build_ts_detector

    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size != times.size:
        raise DataError(f"{x.size} values for {times.size} timestamps")
    if not np.isfinite(x).all():
        raise DataError("the value column holds missing or non-finite values")
    build_ts_detector(algo, **(params or {}))  # a bad name or parameter fails before any work
    scores = np.zeros(x.size)
    reports = []
    for name, rows, resort in group_rows(times, series):
        t = times[rows]
        w = default_warmup(rows.size) if warmup is None else int(warmup)
        if w < 2 or rows.size <= w:
            raise DataError(f"series {name!r}: {rows.size} records, not more than a warm-up of {w}")
        detector = build_ts_detector(algo, **(params or {}))
        detector.fit(x[rows[:w]], t[:w])
        scores[rows[w:]] = detector.score_series(x[rows[w:]], t[w:])
        reports.append(series_report(name, t, w, resort, detector))
    cut = DEFAULT_THRESHOLD if threshold is None else float(threshold)
    return TimeSeriesResult(scores, (scores >= cut).astype(np.int64), cut, algo, reports)


def group_rows(times: np.ndarray, series: Sequence[Any] | None) -> list[tuple[str, np.ndarray, bool]]:
    """Per series (key order): its name (``"all"`` without a series column), its row indices
    in time order (a stable sort, equal timestamps keep file order) and whether it was resorted."""
    keys = np.zeros(times.size, dtype=np.int64)
    names: list[str] = ["all"]
    if series is not None:
        labels = [str(s) for s in series]
        found, keys = np.unique(np.array(labels, dtype=object), return_inverse=True)
        names = [str(n) for n in found]
    out = []
    for k, name in enumerate(names):
        rows = np.flatnonzero(keys == k)
        t = times[rows]
        resort = bool((np.diff(t) < 0).any())
        if resort:
            rows = rows[np.argsort(t, kind="stable")]
        out.append((name, rows, resort))
    return out


def series_report(name: str, t: np.ndarray, warmup: int, resort: bool, detector: Any) -> SeriesReport:
    """Size, warm-up, order and gaps (a step above 1.5 times the median step) of one series."""
    steps = np.diff(t) / 1e9
    median = float(np.median(steps)) if steps.size else 0.0
    big = steps > 1.5 * median if median > 0 else np.zeros(steps.size, dtype=bool)
    return SeriesReport(
        name,
        int(t.size),
        int(warmup),
        resort,
        int(big.sum()),
        float(steps.max()) if big.any() else 0.0,
        int(detector.state_nbytes()),
    )


def parse_threshold(text: str | None) -> float | None:
    """``--threshold`` for a time-series detector: a number in [0, 1] or ``fixed:X``."""
    if text is None:
        return None
    raw = text.removeprefix("fixed:")
    try:
        value = float(raw)
    except ValueError:
        raise ParameterError(
            f"--threshold {text!r}: a time-series detector's scores are in [0, 1]; give a number "
            "or fixed:X (default 0.5)"
        ) from None
    if not 0.0 <= value <= 1.0:
        raise ParameterError(f"--threshold {value:g} is outside [0, 1]")
    return value


def parse_params(params: list[str] | None) -> dict[str, Any]:
    """``--param KEY=VALUE`` for a time-series detector: integers, floats, booleans, else text."""
    options: dict[str, Any] = {}
    for item in params or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ParameterError(f"--param {item!r}: expected KEY=VALUE")
        try:
            options[key.strip()] = int(text) if text.strip().lstrip("-").isdigit() else float(text)
        except ValueError:
            options[key.strip()] = {"true": True, "false": False}.get(text.strip().lower(), text.strip())
    return options


def read_series_file(
    input_path: str, *, time_column: str, series_column: str | None, value_column: str | None
) -> tuple[Any, np.ndarray, Sequence[Any] | None]:
    """The dataset (value column as its one feature, the others passed through), the
    timestamps (int64 ns) and the series keys (``None`` without ``series_column``)."""
    from adcore.data import read_dataset

    value = value_column or "value"
    if value in (time_column, series_column):
        raise ParameterError(f"the value column {value!r} is also the time or series column")
    dataset = read_dataset(input_path, columns=[value], min_rows=2)
    if time_column not in dataset.passthrough:
        raise DataError(
            f"no time column {time_column!r} (columns: {', '.join(dataset.passthrough) or 'none'})",
            path=input_path,
        )
    if series_column is not None and series_column not in dataset.passthrough:
        raise DataError(f"no series column {series_column!r}", path=input_path)
    times = parse_times(dataset.passthrough[time_column], time_column)
    series = dataset.passthrough[series_column] if series_column else None
    return dataset, times, series


def run_file(
    algo: str,
    input_path: str,
    *,
    time_column: str,
    series_column: str | None,
    value_column: str | None,
    params: list[str] | None,
    threshold: str | None,
) -> tuple[Any, TimeSeriesResult]:
    """Read ``input_path`` and score it; returns the dataset (for its pass-through columns)."""
    options = parse_params(params)
    warmup = options.pop("warmup", None)
    dataset, times, series = read_series_file(
        input_path, time_column=time_column, series_column=series_column, value_column=value_column
    )
    result = score_series_table(
        algo,
        dataset.X[:, 0],
        times,
        series,
        params=options,
        threshold=parse_threshold(threshold),
        warmup=warmup,
    )
    return dataset, result
