"""NAB scores of adcore's time-series detectors, per category, against the published ones.

Every detector in ``CANDIDATES`` is fitted per series on NAB's probationary period (the
first 15% of the records, at most 750: the records NAB does not judge) and then scores
every later record causally, point by point in effect (``score_series``, the vectorised
``update_score``). The scores go through ``adcore.timeseries.nab.evaluate_corpus``: NAB's
three profiles with the threshold optimised per detector and profile on the series given
(as the published detectors' rows are scored here too), each category normalised at that
threshold, and the mean VUS-PR over the series with windows.

``ts:auto`` is chosen by one rule: the candidate with the highest standard-profile score.
The leave-one-category-out figure guards that rule against fitting these series: for each
category, the rule picks a candidate and its threshold on the other categories alone, and
that choice scores the held-out category; the held-out raw scores are summed over the
folds and normalised like NAB's total (0 = null detector, 100 = perfect).

Also reported: points per second (CPU time of scoring, whole corpus) and the per-series
state after fitting (``state_nbytes``). Usage::

    python benchmarks/nab_detectors.py --datasets /work/shared/datasets/nab --json nab_detectors.json
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
from nab_baselines import print_tables  # noqa: E402

from adcore.domain.ts_metrics import NAB_PROFILES, nab_normalise, nab_probation_length  # noqa: E402
from adcore.timeseries.detectors import build_ts_detector  # noqa: E402
from adcore.timeseries.detectors.base import score_with_warmup  # noqa: E402
from adcore.timeseries.nab import (  # noqa: E402
    CorpusEvaluation,
    LabelledCorpus,
    evaluate_corpus,
    load_corpus,
    load_results,
)


def _plus_extreme(name: str, **params: Any) -> Callable[[], Any]:
    def make() -> Any:
        from adcore.timeseries.detectors.ensemble import Ensemble
        from adcore.timeseries.detectors.extreme import NewExtreme

        return Ensemble([build_ts_detector(name, **params), NewExtreme()], combine="max")

    return make


#: A few principled variants per family, each alone and with the new-extreme check.
CANDIDATES: dict[str, Callable[[], Any]] = {
    "ts:extreme": lambda: build_ts_detector("extreme"),
    "ts:gaussian": lambda: build_ts_detector("gaussian"),
    "ts:spectral": lambda: build_ts_detector("spectral"),
    "ts:seasonal": lambda: build_ts_detector("seasonal"),
    "ts:sub-core:mad": lambda: build_ts_detector("sub-core:mad"),
    "ts:sub-core:hbos": lambda: build_ts_detector("sub-core:hbos"),
    "ts:discord L=4": lambda: build_ts_detector("discord", length=4),
    "ts:discord": lambda: build_ts_detector("discord"),
    "ts:discord L=16": lambda: build_ts_detector("discord", length=16),
    "ts:gaussian+extreme": _plus_extreme("gaussian"),
    "ts:spectral+extreme": _plus_extreme("spectral"),
    "ts:sub-core:mad+extreme": _plus_extreme("sub-core:mad"),
    "ts:sub-core:hbos+extreme": _plus_extreme("sub-core:hbos"),
    "ts:discord L=4+extreme": _plus_extreme("discord", length=4),
    "ts:discord+extreme": _plus_extreme("discord"),
    "ts:discord L=16+extreme": _plus_extreme("discord", length=16),
    "ts:seasonal+extreme": _plus_extreme("seasonal"),
    "ts:discord+seasonal+extreme": lambda: build_ts_detector("auto"),
}
#: The candidate that ``ts:auto`` builds (checked against the rule's choice below).
AUTO_IS = "ts:discord+seasonal+extreme"


def score_corpus(make: Callable[[], Any], corpus: LabelledCorpus) -> tuple[dict[str, np.ndarray], float, int]:
    """Scores per series, CPU seconds, and the largest per-series state in bytes."""
    scores, state = {}, 0
    start = time.process_time()
    for key, item in corpus.series.items():
        detector = make()
        warmup = int(nab_probation_length(item.values.size))
        scores[key] = score_with_warmup(detector, item.values, warmup, item.timestamps)
        state = max(state, int(detector.state_nbytes()))
    return scores, time.process_time() - start, state


def subset(corpus: LabelledCorpus, categories: set[str]) -> LabelledCorpus:
    return LabelledCorpus(corpus.root, {k: v for k, v in corpus.series.items() if v.category in categories})


def choose(results: dict[str, CorpusEvaluation]) -> str:
    """The rule: highest standard-profile score, ties broken by name (deterministic)."""
    return max(sorted(results), key=lambda name: results[name].nab["standard"].score or -np.inf)


def leave_one_category_out(
    scores: dict[str, dict[str, np.ndarray]], corpus: LabelledCorpus
) -> dict[str, Any]:
    """Choose on four categories (candidate and thresholds), score the fifth; sum the folds."""
    categories = sorted(corpus.categories())
    totals = {p: [0.0, 0.0, 0.0] for p in NAB_PROFILES}  # raw, null, perfect
    folds = {}
    for held in categories:
        train = subset(corpus, set(categories) - {held})
        test = subset(corpus, {held})
        fitted = {
            name: evaluate_corpus({k: s[k] for k in train.series}, train, vus_buffer=None)
            for name, s in scores.items()
        }
        chosen = choose(fitted)
        thresholds = {p: fitted[chosen].nab[p].threshold for p in NAB_PROFILES}
        result = evaluate_corpus(
            {k: scores[chosen][k] for k in test.series}, test, thresholds=thresholds, vus_buffer=None
        )
        folds[held] = {"chosen": chosen, "scores": {p: result.nab[p].score for p in NAB_PROFILES}}
        for p in NAB_PROFILES:
            totals[p][0] += result.nab[p].raw
            totals[p][1] += result.nab[p].null
            totals[p][2] += result.nab[p].perfect
    return {"folds": folds, "total": {p: nab_normalise(*totals[p]) for p in NAB_PROFILES}}


def stream_many(corpus: LabelledCorpus, n_series: int, rounds: int) -> dict[str, float]:
    """``n_series`` ts:auto models (each fitted on the warm-up of one NAB series, in turn),
    then ``rounds`` records to every one, one ``update_score`` call each, round-robin: the
    cost of many series at one point each. Memory is what Python allocated for the models
    (tracemalloc: numpy buffers and object overhead together)."""
    import tracemalloc

    items = list(corpus.series.values())
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    models = []
    for i in range(n_series):
        item = items[i % len(items)]
        warmup = int(nab_probation_length(item.values.size))
        models.append(build_ts_detector("auto").fit(item.values[:warmup], item.timestamps[:warmup]))
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    allocated = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    start = time.perf_counter()
    for r in range(rounds):
        for i, model in enumerate(models):
            item = items[i % len(items)]
            k = int(nab_probation_length(item.values.size)) + r
            model.update_score(float(item.values[k]), item.timestamps[k])
    seconds = time.perf_counter() - start
    return {
        "series": n_series,
        "rounds": rounds,
        "points_per_second": n_series * rounds / seconds,
        "bytes_per_series": allocated / n_series,
        "state_bytes_per_series": float(np.mean([m.state_nbytes() for m in models])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="/work/shared/datasets/nab", help="NAB-layout folder")
    parser.add_argument("--only", default=None, help="comma-separated candidate names (default: all)")
    parser.add_argument("--vus-buffer", type=int, default=100, help="largest VUS buffer, in records")
    parser.add_argument("--json", default="nab_detectors.json", help="where to write the figures")
    parser.add_argument("--stream-series", type=int, default=1000, help="models for the many-series run")
    parser.add_argument("--stream-rounds", type=int, default=5, help="points per model in that run")
    args = parser.parse_args()

    load_before = load_average()
    corpus = load_corpus(args.datasets)
    categories = sorted(corpus.categories())
    names = args.only.split(",") if args.only else list(CANDIDATES)
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        parser.error(f"unknown candidate {unknown[0]!r}; one of {', '.join(CANDIDATES)}")
    n_records = sum(item.values.size for item in corpus.series.values())

    results: dict[str, CorpusEvaluation] = {}
    published_dir = Path(args.datasets) / "published_results"
    if published_dir.is_dir():
        for detector_dir in sorted(p for p in published_dir.iterdir() if p.is_dir()):
            published = load_results(detector_dir, detector_dir.name, corpus)
            results[f"{detector_dir.name} (published)"] = evaluate_corpus(
                published, corpus, vus_buffer=args.vus_buffer
            )
    scores, speed, state = {}, {}, {}
    for name in names:
        scores[name], seconds, state[name] = score_corpus(CANDIDATES[name], corpus)
        speed[name] = n_records / seconds if seconds > 0 else float("inf")
        results[name] = evaluate_corpus(scores[name], corpus, vus_buffer=args.vus_buffer)
        print(f"scored {name}: {results[name].nab['standard'].score:.1f}", file=sys.stderr, flush=True)

    chosen = choose({n: results[n] for n in names})
    loco = leave_one_category_out(scores, corpus) if len(names) > 1 else None

    print(f"{len(corpus.series)} series, {n_records} records; categories: {', '.join(categories)}")
    print_tables(results, categories)
    print(f"\n{'detector':<28}{'points/s':>12}{'state bytes/series':>20}")
    for name in names:
        print(f"{name:<28}{speed[name]:>12.0f}{state[name]:>20}")
    print(f"\nrule (highest standard score on all series) chooses: {chosen}; ts:auto builds {AUTO_IS}")
    if loco:
        print("leave-one-category-out (choice and thresholds made on the other four categories):")
        for held, fold in loco["folds"].items():
            cells = ", ".join(f"{p} {'-' if v is None else f'{v:.1f}'}" for p, v in fold["scores"].items())
            print(f"  {held:<24} chose {fold['chosen']:<26} {cells}")
        print("  total: " + ", ".join(f"{p} {v:.1f}" for p, v in loco["total"].items() if v is not None))

    many = stream_many(corpus, args.stream_series, args.stream_rounds) if args.stream_series > 0 else None
    if many:
        print(
            f"\nts:auto, {many['series']} series x {many['rounds']} points, point by point: "
            f"{many['points_per_second']:.0f} points/s, {many['bytes_per_series'] / 1024:.1f} KiB per series "
            f"allocated ({many['state_bytes_per_series'] / 1024:.1f} KiB of buffers)"
        )

    report = {
        "corpus": {"root": str(corpus.root), "series": len(corpus.series), "records": n_records},
        "detectors": {name: ev.as_dict() for name, ev in results.items()},
        "points_per_second": speed,
        "state_bytes_per_series": state,
        "rule_choice": chosen,
        "auto_is": AUTO_IS,
        "leave_one_category_out": loco,
        "many_series": many,
        "machine": machine(load_before),
    }
    Path(args.json).write_text(json.dumps(report, indent=2, default=float) + "\n")
    print(f"\nwritten {args.json}")


if __name__ == "__main__":
    main()
