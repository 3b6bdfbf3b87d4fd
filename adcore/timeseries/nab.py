"""A NAB-layout corpus and the harness that scores detectors on it.

The layout is the Numenta Anomaly Benchmark's (numenta/NAB): ``data/<category>/<series>.csv``
with ``timestamp,value`` columns, ``labels/combined_windows.json`` mapping
``"<category>/<series>.csv"`` to ``[start, end]`` timestamp pairs, and optionally
``results/<detector>/<category>/<detector>_<series>.csv`` (``timestamp,anomaly_score``)
holding a detector's published scores. Reading it needs nothing but the standard library
and numpy, so the harness runs in the core-alone install.

:func:`evaluate_corpus` is the one place a score array per series becomes benchmark
figures: NAB's three profiles with the threshold optimised on the corpus, per category and
in total, and VUS-PR per series with the label windows as the anomalous ranges.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adcore.domain.ts_metrics import (
    NAB_PROBATION_FRACTION,
    NAB_PROFILES,
    NabCounts,
    NabResult,
    NabSeries,
    nab_score_corpus,
    prepare_nab_series,
    vus_pr,
)
from adcore.errors import DataError, ParameterError

WINDOWS_FILE = Path("labels") / "combined_windows.json"


@dataclass(frozen=True)
class LabelledSeries:
    """One series of the corpus: its key (``category/file.csv``), records and label windows
    (inclusive record indices, as NAB's scorer resolves its timestamp windows)."""

    key: str
    timestamps: np.ndarray = field(repr=False)
    values: np.ndarray = field(repr=False)
    windows: tuple[tuple[int, int], ...]

    @property
    def category(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def labels(self) -> np.ndarray:
        """1 inside a label window, 0 elsewhere: the ranges VUS and range metrics score."""
        y = np.zeros(self.values.shape[0], dtype=np.int8)
        for a, b in self.windows:
            y[a : b + 1] = 1
        return y


@dataclass
class LabelledCorpus:
    """The series of a NAB-layout folder, in key order."""

    root: Path
    series: dict[str, LabelledSeries]

    def categories(self) -> dict[str, list[str]]:
        """Series keys grouped by category (the folder under ``data/``)."""
        out: dict[str, list[str]] = {}
        for key, item in self.series.items():
            out.setdefault(item.category, []).append(key)
        return out


def _parse_times(raw: Iterable[str], where: str) -> np.ndarray:
    try:
        return np.array([np.datetime64(t.strip().replace(" ", "T")) for t in raw], dtype="M8[us]")
    except ValueError as exc:
        raise DataError(f"{where}: unreadable timestamp ({exc})") from None


def read_series_csv(path: Path, column: str) -> tuple[np.ndarray, np.ndarray]:
    """``timestamp`` and one numeric column of a NAB csv, checked for order and numbers."""
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or "timestamp" not in header or column not in header:
            raise DataError(f"{path}: expected columns timestamp and {column}")
        t_col, v_col = header.index("timestamp"), header.index(column)
        rows = [(row[t_col], row[v_col]) for row in reader if row]
    times = _parse_times((r[0] for r in rows), str(path))
    try:
        values = np.array([float(r[1]) for r in rows], dtype=np.float64)
    except ValueError:
        raise DataError(f"{path}: column {column} is not numeric") from None
    # NAB's own files repeat a timestamp here and there; only going back in time is an error
    if times.size > 1 and (np.diff(times) < np.timedelta64(0, "us")).any():
        raise DataError(f"{path}: timestamps go back in time")
    return times, values


def _window_indices(key: str, times: np.ndarray, windows: list[list[str]]) -> tuple[tuple[int, int], ...]:
    """Map ``[start, end]`` timestamps to record indices; both must be records of the series,
    as NAB's scorer requires (it enters a window only on its exact start timestamp). A
    repeated timestamp resolves to its first record, like NAB's ``list.index``."""
    out = []
    for pair in windows:
        if len(pair) != 2:
            raise DataError(f"{key}: a window must be [start, end], got {pair!r}")
        bounds = _parse_times(pair, key)
        idx = np.searchsorted(times, bounds)
        for i, t in zip(idx, bounds, strict=True):
            if i >= times.size or times[i] != t:
                raise DataError(f"{key}: window bound {t} is not a timestamp of the series")
        out.append((int(idx[0]), int(idx[1])))
    return tuple(sorted(out))


def load_corpus(root: str | Path, *, categories: Iterable[str] | None = None) -> LabelledCorpus:
    """Read a NAB-layout folder: every ``data/*/*.csv`` that has an entry in the windows file."""
    base = Path(root)
    windows_path = base / WINDOWS_FILE
    if not windows_path.is_file():
        raise DataError(f"{base}: no {WINDOWS_FILE} (not a NAB-layout corpus)")
    all_windows: dict[str, list[list[str]]] = json.loads(windows_path.read_text())
    wanted = set(categories) if categories is not None else None
    series: dict[str, LabelledSeries] = {}
    for key in sorted(all_windows):
        category = key.split("/", 1)[0]
        if wanted is not None and category not in wanted:
            continue
        path = base / "data" / key
        if not path.is_file():
            continue
        times, values = read_series_csv(path, "value")
        windows = _window_indices(key, times, all_windows[key])
        series[key] = LabelledSeries(key=key, timestamps=times, values=values, windows=windows)
    if not series:
        raise DataError(f"{base}: no series found under data/ with windows in {WINDOWS_FILE}")
    return LabelledCorpus(root=base, series=series)


def load_results(results_dir: str | Path, detector: str, corpus: LabelledCorpus) -> dict[str, np.ndarray]:
    """A detector's published scores, ``<results_dir>/<category>/<detector>_<file>.csv``,
    checked record by record against the corpus timestamps."""
    base = Path(results_dir)
    out: dict[str, np.ndarray] = {}
    for key, item in corpus.series.items():
        category, name = key.split("/", 1)
        path = base / category / f"{detector}_{name}"
        if not path.is_file():
            raise DataError(f"{detector}: no results for {key} ({path})")
        times, scores = read_series_csv(path, "anomaly_score")
        if times.shape != item.timestamps.shape or (times != item.timestamps).any():
            raise DataError(f"{path}: timestamps differ from the series'")
        out[key] = scores
    return out


@dataclass
class CorpusEvaluation:
    """Benchmark figures of one detector on a corpus.

    ``nab[profile]`` holds NAB's result (threshold, raw and normalised total, per-series
    counts); ``categories[category][profile]`` the normalised score of that category at the
    corpus threshold (None for a category without windows, where only false positives can
    happen: see ``categories_raw``); ``vus_pr[key]`` per series with windows.
    """

    nab: dict[str, NabResult]
    categories: dict[str, dict[str, float | None]]
    categories_raw: dict[str, dict[str, float]]
    vus_pr: dict[str, float]

    @property
    def mean_vus_pr(self) -> float | None:
        return float(np.mean(list(self.vus_pr.values()))) if self.vus_pr else None

    @property
    def mean_vus_pr_by_category(self) -> dict[str, float]:
        """Mean VUS-PR of each category's series with windows (TSB-AD reports means)."""
        groups: dict[str, list[float]] = {}
        for key, value in self.vus_pr.items():
            groups.setdefault(key.split("/", 1)[0], []).append(value)
        return {category: float(np.mean(values)) for category, values in groups.items()}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (per-series NAB rows included)."""

        def row(c: NabCounts) -> dict[str, Any]:
            return {"score": c.score, "tp": c.tp, "tn": c.tn, "fp": c.fp, "fn": c.fn}

        return {
            "nab": {
                name: {
                    "threshold": r.threshold if np.isfinite(r.threshold) else None,
                    "raw": r.raw,
                    "null": r.null,
                    "perfect": r.perfect,
                    "score": r.score,
                    "per_series": {k: row(c) for k, c in r.per_series.items()},
                }
                for name, r in self.nab.items()
            },
            "categories": self.categories,
            "categories_raw": self.categories_raw,
            "vus_pr": self.vus_pr,
            "mean_vus_pr": self.mean_vus_pr,
            "mean_vus_pr_by_category": self.mean_vus_pr_by_category,
        }


def evaluate_corpus(
    scores_by_series: Mapping[str, np.ndarray],
    corpus: LabelledCorpus,
    *,
    profiles: Iterable[str] = tuple(NAB_PROFILES),
    thresholds: Mapping[str, float] | None = None,
    vus_buffer: int | None = 100,
    probation_fraction: float = NAB_PROBATION_FRACTION,
) -> CorpusEvaluation:
    """Score one detector's per-record scores on every series of ``corpus``.

    The NAB threshold is optimised per profile on the series given (pass ``thresholds`` to
    score at fixed ones, e.g. NAB's published ``config/thresholds.json``). VUS-PR uses the
    label windows as anomalous ranges with buffers up to ``vus_buffer`` records (None skips
    it); the probationary records are left out of it too, so the learning period counts
    for neither metric.
    """
    missing = sorted(set(corpus.series) - set(scores_by_series))
    if missing:
        raise DataError(f"no scores for {len(missing)} series, e.g. {missing[0]}")
    prepared: dict[str, NabSeries] = {}
    for key, item in corpus.series.items():
        scores = np.asarray(scores_by_series[key], dtype=np.float64).ravel()
        if scores.shape != item.values.shape:
            raise DataError(f"{key}: {scores.shape[0]} scores for {item.values.shape[0]} records")
        prepared[key] = prepare_nab_series(key, scores, item.windows, probation_fraction=probation_fraction)
    chosen = list(profiles)
    unknown = [p for p in chosen if p not in NAB_PROFILES]
    if unknown:
        raise ParameterError(f"unknown NAB profile {unknown[0]!r}; one of {', '.join(NAB_PROFILES)}")
    series_list = list(prepared.values())
    nab = {
        name: nab_score_corpus(
            series_list,
            NAB_PROFILES[name],
            threshold=None if thresholds is None else thresholds[name],
        )
        for name in chosen
    }
    categories: dict[str, dict[str, float | None]] = {}
    categories_raw: dict[str, dict[str, float]] = {}
    for category, keys in corpus.categories().items():
        categories[category], categories_raw[category] = {}, {}
        for name, result in nab.items():
            raw, normalised = result.subset(keys, prepared)
            categories[category][name] = normalised
            categories_raw[category][name] = raw
    vus: dict[str, float] = {}
    if vus_buffer is not None:
        for key, item in corpus.series.items():
            scored = prepared[key].window != -2
            y = item.labels[scored]
            if y.any() and not y.all():
                vus[key] = vus_pr(y, prepared[key].scores[scored], max_buffer=vus_buffer)
    return CorpusEvaluation(nab=nab, categories=categories, categories_raw=categories_raw, vus_pr=vus)
