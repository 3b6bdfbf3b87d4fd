"""The benchmark service behind ``adcore bench``: the ADBench unsupervised protocol.

For every dataset and detector: fit on all rows without labels, score all rows, then
ROC-AUC and average precision against the labels, fit and score time, and the peak
resident memory added while fitting and scoring. With ``ensemble=True`` the default
ensemble of the listed detectors is evaluated too, combined from the members' scores
already computed (exactly what ``--algo a,b,c`` would give, without refitting), its
fit time being the members' total.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adcore.domain.metrics import average_precision, roc_auc
from adcore.errors import AdcoreError, DataError, ParameterError

DATASET_SUFFIXES = (".npz", ".csv")


@dataclass
class BenchDataset:
    name: str
    X: np.ndarray
    y: np.ndarray


@dataclass
class BenchRecord:
    """One (dataset, detector) cell of the benchmark."""

    dataset: str
    detector: str
    n_samples: int
    n_features: int
    roc_auc: float | None = None
    average_precision: float | None = None
    fit_seconds: float | None = None
    score_seconds: float | None = None
    peak_memory_mb: float | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def find_datasets(paths: list[str]) -> list[Path]:
    """Expand folders into their ``.npz``/``.csv`` files, sorted by name."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in DATASET_SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            raise DataError("no such file or folder", path=str(path))
    if not found:
        raise DataError(f"no .npz or .csv datasets found in {', '.join(paths)}")
    return found


def load_dataset(path: Path, label_column: str = "label") -> BenchDataset:
    """``.npz`` with ``X`` and ``y``, or a CSV whose ``label_column`` holds 0/1."""
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            if "X" not in archive or "y" not in archive:
                raise DataError(
                    f"a benchmark .npz needs arrays X and y, found {', '.join(archive.files)}", path=str(path)
                )
            X = np.ascontiguousarray(archive["X"], dtype=np.float64)
            y = np.asarray(archive["y"]).astype(np.int64).ravel()
    else:
        from adcore.data import read_dataset
        from adcore.io.columns import peek_columns

        columns = [c for c in peek_columns(str(path), False) if c != label_column]
        dataset = read_dataset(path, columns=columns)
        if label_column not in dataset.passthrough:
            raise DataError(f"no label column {label_column!r}", path=str(path))
        try:
            y = np.asarray([int(float(v)) for v in dataset.passthrough[label_column]], dtype=np.int64)
        except ValueError:
            raise DataError("labels must be 0 or 1", path=str(path), column=label_column) from None
        X = dataset.X
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise DataError(f"X has shape {X.shape} but y has {y.shape[0]} labels", path=str(path))
    return BenchDataset(path.stem, X, y)


class PeakMemory:
    """Peak resident memory above the starting point, sampled by a thread (Linux /proc)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._stop = threading.Event()
        self.peak_bytes = 0

    def _rss(self) -> int | None:
        try:
            with open("/proc/self/statm") as handle:
                return int(handle.read().split()[1]) * self._page
        except OSError:
            return None

    def __enter__(self) -> PeakMemory:
        self.start = self._rss()
        self._peak = self.start or 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, self._rss() or 0)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._rss() or 0)
        self.peak_bytes = max(0, self._peak - (self.start or 0))

    @property
    def megabytes(self) -> float | None:
        return None if self.start is None else round(self.peak_bytes / 2**20, 1)


def evaluate(
    detector_name: str, data: BenchDataset, seed: int | None
) -> tuple[BenchRecord, np.ndarray | None]:
    """Fit and score one detector on one dataset; errors become a record, never a crash."""
    from adcore.services.spec import create_detector

    record = BenchRecord(data.name, detector_name, data.X.shape[0], data.X.shape[1])
    try:
        detector = create_detector(detector_name, random_state=seed)
        record.detector = detector.algorithm_name
        with PeakMemory() as memory:
            started = time.perf_counter()
            detector.fit(data.X)
            fitted = time.perf_counter()
            scores = detector.decision_function(data.X)
            record.score_seconds = round(time.perf_counter() - fitted, 4)
        record.fit_seconds = round(fitted - started, 4)
        record.peak_memory_mb = memory.megabytes
        record.roc_auc = round(roc_auc(data.y, scores), 6)
        record.average_precision = round(average_precision(data.y, scores), 6)
        return record, np.asarray(detector.decision_scores_, dtype=np.float64)
    except AdcoreError as exc:
        record.error = str(exc)
    except Exception as exc:  # a detector's own failure is a benchmark finding
        record.error = f"{type(exc).__name__}: {exc}"
    return record, None


def combine_default(
    names: list[str], member_scores: list[np.ndarray], data: BenchDataset, records: list[BenchRecord]
) -> BenchRecord:
    """The default ensemble of the members, from their training scores."""
    from adcore.domain.combination import (
        DEFAULT_COMBINATION,
        DEFAULT_NORMALIZATION,
        ScoreCombiner,
        ScoreNormalizer,
    )

    label = f"ensemble({','.join(names)})"
    record = BenchRecord(data.name, label, data.X.shape[0], data.X.shape[1])
    started = time.perf_counter()
    matrix = np.column_stack(member_scores)
    normalised = ScoreNormalizer(DEFAULT_NORMALIZATION).fit_transform(matrix)
    combiner = ScoreCombiner(DEFAULT_COMBINATION).fit(normalised)
    scores = combiner.combine(normalised)
    combine_seconds = time.perf_counter() - started
    record.fit_seconds = round(sum(r.fit_seconds or 0 for r in records) + combine_seconds, 4)
    record.score_seconds = round(sum(r.score_seconds or 0 for r in records), 4)
    record.peak_memory_mb = max((r.peak_memory_mb or 0 for r in records), default=None)
    record.roc_auc = round(roc_auc(data.y, scores), 6)
    record.average_precision = round(average_precision(data.y, scores), 6)
    weights = combiner.weights_
    record.extra["weights"] = None if weights is None else [round(float(w), 4) for w in weights]
    return record


def run_benchmark(
    detectors: list[str],
    datasets: list[Path],
    *,
    ensemble: bool = False,
    seed: int | None = 0,
    label_column: str = "label",
    on_progress: Callable[[str], None] | None = None,
) -> Iterator[BenchRecord]:
    """Yield one record per (dataset, detector), then the ensemble's, dataset by dataset."""
    for path in datasets:
        data = load_dataset(path, label_column)
        records: list[BenchRecord] = []
        scores: list[np.ndarray] = []
        for name in detectors:
            if on_progress:
                on_progress(f"{data.name} · {name}")
            record, train_scores = evaluate(name, data, seed)
            records.append(record)
            if train_scores is not None:
                scores.append(train_scores)
            yield record
        if ensemble and len(scores) >= 2 and len(scores) == len(detectors):
            yield combine_default(detectors, scores, data, records)


def summarise(records: list[BenchRecord]) -> list[dict[str, Any]]:
    """Mean ROC-AUC / AP / times per detector over the datasets where it ran."""
    by_detector: dict[str, list[BenchRecord]] = {}
    for record in records:
        by_detector.setdefault(record.detector, []).append(record)
    rows = []
    for name, group in by_detector.items():
        ok = [r for r in group if r.error is None]
        rows.append(
            {
                "detector": name,
                "datasets": len(ok),
                "errors": len(group) - len(ok),
                "mean_roc_auc": round(float(np.mean([r.roc_auc for r in ok])), 4) if ok else None,
                "mean_average_precision": round(float(np.mean([r.average_precision for r in ok])), 4)
                if ok
                else None,
                "total_fit_seconds": round(sum(r.fit_seconds or 0 for r in ok), 3),
                "total_score_seconds": round(sum(r.score_seconds or 0 for r in ok), 3),
            }
        )
    return rows


def is_combination(name: str) -> bool:
    """A detector that chooses or combines others (``ensemble(...)``, ``auto``): never a "single"."""
    return name.startswith("ensemble(") or name.split(":")[-1] == "auto" or "," in name


def references(records: list[BenchRecord]) -> dict[str, Any] | None:
    """The figures a default is judged against, over the datasets where every single detector ran.

    - ``best_single``: the one single detector with the highest mean ROC-AUC (what a user who
      benchmarked first would pick for every dataset);
    - ``oracle``: the best single detector *per dataset*, picked with the labels in hindsight:
      the ceiling of choosing, which no label-free method reaches;
    - ``combined``: each ensemble or ``auto`` row, with its gap to both.

    ``None`` with fewer than two single detectors (nothing to choose between).
    """
    singles = sorted({r.detector for r in records if not is_combination(r.detector)})
    if len(singles) < 2:
        return None
    table: dict[str, dict[str, float]] = {}
    for r in records:
        if r.error is None and r.roc_auc is not None:
            table.setdefault(r.dataset, {})[r.detector] = r.roc_auc
    common = [ds for ds, row in table.items() if all(name in row for name in singles)]
    if not common:
        return None
    means = {name: float(np.mean([table[ds][name] for ds in common])) for name in singles}
    best = max(singles, key=lambda name: (means[name], name))
    picks = {ds: max(singles, key=lambda name: (table[ds][name], name)) for ds in common}
    oracle = float(np.mean([table[ds][picks[ds]] for ds in common]))
    combined = {}
    for name in sorted({r.detector for r in records if is_combination(r.detector)}):
        if all(name in table[ds] for ds in common):
            mean = float(np.mean([table[ds][name] for ds in common]))
            worst = min(table[ds][name] - table[ds][best] for ds in common)
            combined[name] = {
                "mean_roc_auc": round(mean, 4),
                "vs_best_single": round(mean - means[best], 4),
                "vs_oracle": round(mean - oracle, 4),
                "worst_gap_to_best_single": round(worst, 4),
            }
    return {
        "datasets": len(common),
        "best_single": best,
        "best_single_mean_roc_auc": round(means[best], 4),
        "oracle_mean_roc_auc": round(oracle, 4),
        "oracle_picks": picks,
        "combined": combined,
    }


def to_rows(records: list[BenchRecord]) -> list[dict[str, Any]]:
    return [asdict(r) for r in records]


# --------------------------------------------------------------- adcore bench --task timeseries

TIMESERIES_METRICS = ("vus-pr", "nab")


@dataclass
class TimeseriesRecord:
    """One detector on a labelled time-series corpus (``adcore bench --task timeseries``)."""

    detector: str
    seconds: float | None = None
    evaluation: Any = None  # adcore.timeseries.nab.CorpusEvaluation
    error: str | None = None


def parse_ts_metrics(raw: str) -> tuple[str, ...]:
    """``"vus-pr,nab"`` -> the metrics asked for, each checked."""
    chosen = tuple(m.strip().lower() for m in raw.split(",") if m.strip())
    unknown = [m for m in chosen if m not in TIMESERIES_METRICS]
    if unknown or not chosen:
        raise ParameterError(f"--metric takes {' and/or '.join(TIMESERIES_METRICS)}, not {raw!r}")
    return chosen


def run_timeseries_benchmark(
    detectors: list[str],
    root: str | Path,
    *,
    metrics: tuple[str, ...] = TIMESERIES_METRICS,
    window: int = 16,
    seed: int | None = 0,
    vus_buffer: int = 100,
    on_progress: Callable[[str], None] | None = None,
) -> tuple[Any, list[TimeseriesRecord]]:
    """Score every series of a NAB-layout corpus causally with each detector, then evaluate.

    A time-series detector (``ts:NAME``) is fitted per series on its probationary period and
    scores every later record itself (:func:`ts_series_scores`, the harness of
    ``benchmarks/nab_detectors.py``, so the same figures); a tabular detector is fitted on
    the probationary period's sliding windows and scores every later record from its own
    window (``adcore.timeseries.scoring``). NAB's profiles (threshold optimised on the
    corpus) and VUS-PR are computed by ``adcore.timeseries.nab.evaluate_corpus``. A
    detector that fails becomes a record with its error, as in the tabular benchmark.
    """
    from adcore.services.spec import create_detector
    from adcore.timeseries.detectors import build_ts_detector
    from adcore.timeseries.nab import evaluate_corpus, load_corpus
    from adcore.timeseries.scoring import causal_window_scores

    if window < 1:
        raise ParameterError(f"--window must be at least 1 record, not {window}")
    for name in detectors:
        if name.startswith("ts:"):
            build_ts_detector(name)  # an unknown name is the caller's error, not a finding
    corpus = load_corpus(root)
    records = []
    for name in detectors:
        if on_progress:
            on_progress(name)
        record = TimeseriesRecord(name)
        try:
            started = time.perf_counter()
            if name.startswith("ts:"):
                scores = ts_series_scores(name, corpus)
            else:
                make = functools.partial(create_detector, name, random_state=seed)
                scores = {
                    key: causal_window_scores(make, item.values, window=window)
                    for key, item in corpus.series.items()
                }
            record.seconds = round(time.perf_counter() - started, 3)
            record.evaluation = evaluate_corpus(
                scores, corpus, vus_buffer=vus_buffer if "vus-pr" in metrics else None
            )
        except AdcoreError as exc:
            record.error = str(exc)
        except Exception as exc:  # a detector's own failure is a benchmark finding
            record.error = f"{type(exc).__name__}: {exc}"
        records.append(record)
    return corpus, records


def ts_series_scores(name: str, corpus: Any, params: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Per-series scores of time-series detector ``name``: a fresh detector per series, fitted
    on NAB's probationary period (those records score 0, and no metric counts them), then
    scoring every later record causally, with the series' timestamps (seasonal periods)."""
    from adcore.domain.ts_metrics import nab_probation_length
    from adcore.timeseries.detectors import build_ts_detector
    from adcore.timeseries.detectors.base import score_with_warmup

    scores = {}
    for key, item in corpus.series.items():
        detector = build_ts_detector(name, **(params or {}))
        warmup = int(nab_probation_length(item.values.size))
        scores[key] = score_with_warmup(detector, item.values, warmup, item.timestamps)
    return scores
