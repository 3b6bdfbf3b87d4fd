"""NAB scores of the published detectors and of causal baselines, per category and in total.

Scores every detector on the NAB-layout corpus given (``--datasets``; the shared copy holds
34 of NAB's 58 series) with ``adcore.timeseries.nab.evaluate_corpus``: NAB's three profiles
(standard, reward_low_FP_rate, reward_low_FN_rate), the threshold optimised per detector
and profile on these series, each category normalised at that threshold (100 = every
window caught at its first record, 0 = nothing detected; a category without windows has no
normalised score), and the mean VUS-PR over the series with windows (label windows as the
anomalous ranges, buffers up to ``--vus-buffer`` records, probationary records left out).

Detectors:

- the published ones, from ``<datasets>/published_results/<detector>/`` (NAB's own result
  files: ARTime, numenta HTM, randomCutForest, windowedGaussian in the shared copy);
- ``null`` (never alarms) and ``random`` (uniform scores, seed 0);
- ``windowedGaussian (ours)``: ``adcore.timeseries.baselines.windowed_gaussian_scores``, a
  re-implementation of NAB's detector, its scores rounded to 12 significant digits as NAB's
  result files store them. It must score what the published windowedGaussian scores: that
  checks the whole chain (loader, detector, scorer, threshold sweep, normalisation). The
  ``unrounded`` row shows how much the rounding alone moves NAB's score (the detector
  saturates at 1.0, the optimal threshold);
- ``gaussian w=288 step=1``: the same detector on the last day of 5-minute records,
  refitted every record (a short-memory causal baseline).

The figures differ from NAB's 58-series scoreboard (thresholds are optimised on other
series) but keep its order. Usage::

    python benchmarks/nab_baselines.py --datasets /work/shared/datasets/nab --json nab_baselines.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_machine import load_average, machine  # noqa: E402

from adcore.domain.ts_metrics import NAB_PROFILES  # noqa: E402
from adcore.timeseries.baselines import (  # noqa: E402
    null_scores,
    random_scores,
    windowed_gaussian_scores,
)
from adcore.timeseries.nab import CorpusEvaluation, LabelledCorpus, evaluate_corpus, load_corpus, load_results  # noqa: E402

PROFILE_SHORT = {"standard": "standard", "reward_low_FP_rate": "low FP", "reward_low_FN_rate": "low FN"}


def nab_rounded(scores: np.ndarray) -> np.ndarray:
    """Scores as NAB's result files hold them: 12 significant digits."""
    return np.array([float(f"{x:.12g}") for x in scores])


def baselines() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    return {
        "null": null_scores,
        "random": random_scores,
        "windowedGaussian (ours)": lambda v: nab_rounded(windowed_gaussian_scores(v)),
        "windowedGaussian (ours, unrounded)": windowed_gaussian_scores,
        "gaussian w=288 step=1": lambda v: windowed_gaussian_scores(v, window=288, step=1),
    }


def run_baseline(fn: Callable[[np.ndarray], np.ndarray], corpus: LabelledCorpus) -> tuple[dict, float]:
    start = time.process_time()
    scores = {key: fn(item.values) for key, item in corpus.series.items()}
    return scores, time.process_time() - start


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def print_tables(results: dict[str, CorpusEvaluation], categories: list[str]) -> None:
    width = max(len(name) for name in results) + 2
    for profile in NAB_PROFILES:
        print(f"\nNAB {profile} (threshold optimised on these series)")
        head = f"{'detector':<{width}}" + "".join(f"{c[:22]:>24}" for c in categories)
        head += f"{'total':>8}{'threshold':>12}"
        if profile == "standard":
            head += f"{'VUS-PR':>8}"
        print(head)
        for name, ev in results.items():
            result = ev.nab[profile]
            row = f"{name:<{width}}"
            for category in categories:
                norm = ev.categories[category][profile]
                cell = fmt(norm) if norm is not None else f"raw {ev.categories_raw[category][profile]:.2f}"
                row += f"{cell:>24}"
            threshold = "none" if not np.isfinite(result.threshold) else f"{result.threshold:.6g}"
            row += f"{fmt(result.score):>8}{threshold:>12}"
            if profile == "standard":
                vus = ev.mean_vus_pr
                row += f"{'-' if vus is None else f'{vus:.3f}':>8}"
            print(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="/work/shared/datasets/nab", help="NAB-layout folder")
    parser.add_argument(
        "--published", default=None, help="published results (default: <datasets>/published_results)"
    )
    parser.add_argument("--vus-buffer", type=int, default=100, help="largest VUS buffer, in records")
    parser.add_argument("--no-baselines", action="store_true", help="score the published detectors only")
    parser.add_argument("--json", default="nab_baselines.json", help="where to write the figures")
    args = parser.parse_args()

    load_before = load_average()
    corpus = load_corpus(args.datasets)
    categories = sorted(corpus.categories())
    published_dir = Path(args.published) if args.published else Path(args.datasets) / "published_results"
    results: dict[str, CorpusEvaluation] = {}
    timings: dict[str, float] = {}
    if published_dir.is_dir():
        for detector_dir in sorted(p for p in published_dir.iterdir() if p.is_dir()):
            scores = load_results(detector_dir, detector_dir.name, corpus)
            results[detector_dir.name] = evaluate_corpus(scores, corpus, vus_buffer=args.vus_buffer)
    if not args.no_baselines:
        for name, fn in baselines().items():
            scores, seconds = run_baseline(fn, corpus)
            timings[name] = seconds
            results[name] = evaluate_corpus(scores, corpus, vus_buffer=args.vus_buffer)

    n_records = sum(item.values.shape[0] for item in corpus.series.values())
    n_windows = sum(len(item.windows) for item in corpus.series.values())
    print(f"{len(corpus.series)} series, {n_records} records, {n_windows} windows")
    print(f"categories: {', '.join(categories)}")
    print_tables(results, categories)
    if timings:
        print(
            "\nbaseline CPU seconds (whole corpus): " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items())
        )

    report: dict[str, Any] = {
        "corpus": {
            "root": str(corpus.root),
            "series": len(corpus.series),
            "records": n_records,
            "windows": n_windows,
        },
        "vus_buffer": args.vus_buffer,
        "detectors": {name: ev.as_dict() for name, ev in results.items()},
        "baseline_cpu_seconds": timings,
        "machine": machine(load_before),
    }
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten {args.json}")


if __name__ == "__main__":
    main()
