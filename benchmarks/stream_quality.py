"""Detection quality and speed of online detectors, prequential, against pysad and River.

Every record is scored before the detector learns it (test-then-train) and the whole
stream is evaluated: ROC-AUC and average precision (AP). A detector that leaves records
unscored (a warm-up) has them counted as its lowest score.

Streams (``benchmarks/stream_data.py``): the generated suite (point, dependency-breaking,
contextual and collective anomalies; no drift, mean shift, variance change, rotating
covariance, gradual drift; 5 to 100 features, unscaled) and the ADBench sets replayed as
streams (rows shuffled with a fixed seed). Every stream is capped at ``--records``.

Every records/s is CPU seconds of the detector's own loop (parsing and I/O excluded), which
moves far less than wall time on a shared machine. Besides the per-stream figures (short
streams, calibration included), a throughput run times each detector past its first 2,000
records of a ``--speed-records`` stream of 10 features.

Detectors:

- ours (``adcore.builtin.online``): ``core:loda``, ``core:rshash``, ``core:xstream``,
  ``core:hst`` with their defaults, driven by ``score_partial`` over batches of 1,000 records
  (records/s is this loop: the detector's own throughput, not ``adcore stream`` end to end),
  and ``ours:mean-z``, the mean of their scores each standardised by the running mean and
  standard deviation of its earlier scores (computed after the fact here, from the members'
  prequential scores; it costs the sum of its members);
- River's ``HalfSpaceTrees`` (defaults, behind River's ``MinMaxScaler`` as River documents, one
  record at a time: ``score_one`` then ``learn_one``);
- pysad's ``xStream``, ``RSHash`` and ``LODA`` (defaults, ``fit_score_partial`` per record).
  pysad's RS-Hash needs the features' ranges up front: it is given the true range of the
  whole stream (an oracle ours does not get). pysad is slow: it scores only the first
  ``--pysad-limit`` records of each stream, its records/s is measured there, and the
  summary compares every detector on those same records.

Usage::

    pip install pysad river
    python benchmarks/stream_quality.py --quick                      # a smoke run, about a minute
    python benchmarks/stream_quality.py --records 10000 --pysad-limit 5000 --json stream_quality.json
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from stream_data import Stream, adbench_stream, generated_suite  # noqa: E402

from adcore.domain.metrics import roc_auc  # noqa: E402

BATCH = 1000
OURS = ("core:loda", "core:rshash", "core:xstream", "core:hst")
ENSEMBLE = "ours:mean-z"
PYSAD = ("pysad:loda", "pysad:rshash", "pysad:xstream")
RIVER = "river:hst"
ADBENCH = "/work/shared/datasets/adbench"
QUICK_ADBENCH = ("42_WBC", "6_cardio", "38_thyroid", "29_Pima")


def average_precision(y: np.ndarray, scores: np.ndarray) -> float:
    """Average precision (scikit-learn's step definition, ties grouped), numpy only."""
    y = np.asarray(y)
    positives = int(y.sum())
    if positives == 0:
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, hits = scores[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(y) - 1]  # end of each tie group
    tp = np.cumsum(hits)[last]
    precision = tp / (last + 1)
    recall_gain = np.diff(np.r_[0, tp]) / positives
    return float(np.sum(precision * recall_gain))


# ---------------------------------------------------------------------- runners
def run_ours(name: str, X: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float]:
    """Prequential scores of one of our detectors over batches of BATCH, and the seconds taken."""
    detector = _factory(name)(random_state=seed)
    start = time.process_time()
    scores = np.concatenate([detector.score_partial(X[i : i + BATCH]) for i in range(0, len(X), BATCH)])
    return scores, time.process_time() - start


def running_z(scores: np.ndarray, warm: int = 128) -> np.ndarray:
    """Each score standardised by the mean and std of the scores before it (0 for the first ``warm``).

    Without the warm-up, the first few z-scores (a std from a handful of scores) are huge and
    early, ordinary records top the ranking.
    """
    n = len(scores)
    count = np.arange(n, dtype=np.float64)
    total = np.r_[0.0, np.cumsum(scores)[:-1]]
    squares = np.r_[0.0, np.cumsum(scores**2)[:-1]]
    mean = total / np.maximum(count, 1)
    var = np.maximum(squares / np.maximum(count, 1) - mean**2, 0.0)
    z = (scores - mean) / np.sqrt(np.maximum(var, 1e-12))
    return np.where(count >= warm, np.clip(z, -50, 50), 0.0)


def run_pysad(name: str, X: np.ndarray, full: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float]:
    """pysad's detector record by record (fit_score_partial)."""
    from pysad.models import LODA, RSHash, xStream

    kind = name.split(":")[1]
    if kind == "loda":
        model = LODA(random_state=seed)
    elif kind == "rshash":
        model = RSHash(full.min(axis=0), full.max(axis=0), random_state=seed)
    else:
        model = xStream(random_state=seed)
    start = time.process_time()
    scores = np.array([float(np.ravel(model.fit_score_partial(x))[0]) for x in X])
    elapsed = time.process_time() - start
    return np.nan_to_num(scores, nan=np.nanmin(scores) if np.isfinite(scores).any() else 0.0), elapsed


def run_river(X: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float]:
    """River's HalfSpaceTrees behind its online MinMaxScaler, as River's docs use it."""
    import warnings

    from river import anomaly, preprocessing

    model = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=seed)
    rows = [dict(enumerate(x.tolist())) for x in X]
    scores = np.empty(len(rows))
    start = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a constant feature: 0/0 in its scaler
        for i, row in enumerate(rows):
            scores[i] = model.score_one(row)
            model.learn_one(row)
    return scores, time.process_time() - start


# ---------------------------------------------------------------------- evaluation
def evaluate(stream: Stream, detectors: list[str], pysad_limit: int, seed: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    X, y = stream.X, stream.y
    prefix = min(len(y), pysad_limit)
    member_z = []
    for name in detectors:
        if name in OURS:
            scores, seconds = run_ours(name, X, seed)
            member_z.append(running_z(scores))
            n_timed = len(y)
        elif name in PYSAD:
            scores, seconds = run_pysad(name, X[:prefix], X, seed)
            n_timed = prefix
        elif name == RIVER:
            scores, seconds = run_river(X, seed)
            n_timed = len(y)
        else:
            continue
        rows.append(_metrics(stream, name, scores, seconds, n_timed, prefix))
    if ENSEMBLE in detectors and member_z:
        combined = np.mean(member_z, axis=0)
        seconds = sum(r["seconds"] for r in rows if r["detector"] in OURS)
        rows.append(_metrics(stream, ENSEMBLE, combined, seconds, len(y), prefix))
    return rows


def _metrics(
    stream: Stream, name: str, scores: np.ndarray, seconds: float, n_timed: int, prefix: int
) -> dict:
    y = stream.y
    full = len(scores) == len(y)
    head_y, head_s = y[:prefix], scores[:prefix]
    return {
        "stream": stream.name,
        "drift": stream.drift,
        "anomaly": stream.anomaly,
        "detector": name,
        "records": len(y),
        "anomalies": int(y.sum()),
        "roc_auc": roc_auc(y, scores) if full else None,
        "ap": average_precision(y, scores) if full else None,
        "prefix_roc_auc": roc_auc(head_y, head_s) if head_y.sum() else None,
        "prefix_ap": average_precision(head_y, head_s) if head_y.sum() else None,
        "records_per_s": n_timed / seconds if seconds > 0 else None,
        "seconds": seconds,
    }


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per detector: mean prefix AP/ROC-AUC on drifting generated streams, all generated, ADBench."""
    groups: dict[str, Callable[[dict], bool]] = {
        "drifting": lambda r: r["drift"] != "none" and not r["stream"].startswith("adbench"),
        "generated": lambda r: not r["stream"].startswith("adbench"),
        "adbench": lambda r: r["stream"].startswith("adbench"),
    }
    out = []
    for detector in dict.fromkeys(r["detector"] for r in rows):
        mine = [r for r in rows if r["detector"] == detector]
        entry: dict[str, Any] = {"detector": detector}
        for group, keep in groups.items():
            chosen = [r for r in mine if keep(r) and r["prefix_ap"] is not None]
            entry[f"{group}_ap"] = float(np.mean([r["prefix_ap"] for r in chosen])) if chosen else None
            entry[f"{group}_roc_auc"] = (
                float(np.mean([r["prefix_roc_auc"] for r in chosen])) if chosen else None
            )
        speeds = [r["records_per_s"] for r in mine if r["records_per_s"]]
        entry["records_per_s"] = float(np.median(speeds)) if speeds else None
        out.append(entry)
    return out


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def print_tables(rows: list[dict[str, Any]], summary: list[dict[str, Any]], prefix: int) -> None:
    detectors = list(dict.fromkeys(r["detector"] for r in rows))
    streams = list(dict.fromkeys(r["stream"] for r in rows))
    width = max(len(s) for s in streams) + 2
    print(f"\nAP on the first {prefix} records of each stream (ROC-AUC below), every record scored first")
    print("stream".ljust(width) + "".join(d.rjust(14) for d in detectors))
    for metric in ("prefix_ap", "prefix_roc_auc"):
        for stream in streams:
            cells = {r["detector"]: r[metric] for r in rows if r["stream"] == stream}
            print(stream.ljust(width) + "".join(_fmt(cells.get(d)).rjust(14) for d in detectors))
        print()
    print("summary (means over streams; records/s: median over streams)")
    print(
        "detector".ljust(16)
        + "".join(h.rjust(12) for h in ("drift AP", "drift AUC", "gen AP", "gen AUC", "adb AP", "adb AUC"))
        + "records/s".rjust(12)
    )
    for s in summary:
        values = [s["drifting_ap"], s["drifting_roc_auc"], s["generated_ap"], s["generated_roc_auc"]]
        values += [s["adbench_ap"], s["adbench_roc_auc"]]
        print(
            s["detector"].ljust(16)
            + "".join(_fmt(v).rjust(12) for v in values)
            + _fmt(s["records_per_s"], ",.0f").rjust(12)
        )


def throughput(records: int, pysad_limit: int, detectors: list[str], seed: int) -> list[dict[str, Any]]:
    """Steady-state records/s on one long stream (10 features, a mean shift), CPU seconds.

    Quality runs time short streams, where calibration is a visible share; this times each
    detector past its first 2,000 records, best of three runs for ours (CPU time: on a
    shared machine wall time moves with other load), once for River and pysad (pysad on
    ``pysad_limit`` records at most).
    """
    from stream_data import make_stream

    stream = make_stream("point", "mean_shift", n=records + 2_000, d=10, seed=7)
    head, X = stream.X[:2_000], stream.X[2_000:]
    out = []
    for name in detectors:
        if name in OURS:
            best = float("inf")
            for _ in range(3):
                factory = _factory(name)
                detector = factory(random_state=seed)
                detector.score_partial(head)
                started = time.process_time()
                for i in range(0, len(X), BATCH):
                    detector.score_partial(X[i : i + BATCH])
                best = min(best, time.process_time() - started)
            out.append({"detector": name, "records": len(X), "cpu_seconds": best})
        elif name in PYSAD or name == RIVER:
            n = min(len(X), pysad_limit) if name in PYSAD else len(X)
            if name == RIVER:
                _, seconds = run_river(X[:n], seed)
            else:
                _, seconds = run_pysad(name, X[:n], stream.X, seed)
            out.append({"detector": name, "records": n, "cpu_seconds": seconds})
    for row in out:
        row["records_per_s"] = row["records"] / row["cpu_seconds"]
    return out


def _factory(name: str) -> Callable[..., Any]:
    from adcore.plugins import get_host, resolve_reference

    factory = get_host().resolve("detector", name).factory
    return resolve_reference(factory) if isinstance(factory, str) else factory


def print_throughput(rows: list[dict[str, Any]]) -> None:
    speed = {r["detector"]: r["records_per_s"] for r in rows}
    print("\nthroughput, 10 features, CPU time (ours: score_partial over batches of 1,000)")
    print(
        "detector".ljust(16)
        + "records".rjust(10)
        + "records/s".rjust(14)
        + "x River HST".rjust(14)
        + "x pysad same".rjust(14)
    )
    for r in rows:
        same = "pysad:" + r["detector"].split(":")[1] if r["detector"] in OURS else None
        vs_river = r["records_per_s"] / speed[RIVER] if RIVER in speed else None
        vs_pysad = r["records_per_s"] / speed[same] if same in speed else None
        print(
            r["detector"].ljust(16)
            + f"{r['records']:,}".rjust(10)
            + f"{r['records_per_s']:,.0f}".rjust(14)
            + _fmt(vs_river, ",.1f").rjust(14)
            + _fmt(vs_pysad, ",.0f").rjust(14)
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small streams, few ADBench sets: a smoke run")
    parser.add_argument("--records", type=int, default=10_000, help="records per stream (cap for ADBench)")
    parser.add_argument("--pysad-limit", type=int, default=5_000, help="records pysad scores per stream")
    parser.add_argument("--adbench", default=ADBENCH, help="folder of ADBench .npz files ('' to skip)")
    parser.add_argument("--detectors", default=",".join((*OURS, ENSEMBLE, RIVER, *PYSAD)))
    parser.add_argument("--seed", type=int, default=0, help="detectors' seed")
    parser.add_argument("--speed-records", type=int, default=50_000, help="records of the throughput run")
    parser.add_argument("--json", dest="json_path", help="write every figure here")
    args = parser.parse_args(argv)
    if args.quick:
        args.records, args.pysad_limit = min(args.records, 2_000), min(args.pysad_limit, 2_000)
        args.speed_records = min(args.speed_records, 10_000)
    detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    streams = generated_suite(n=args.records)
    if args.adbench and os.path.isdir(args.adbench):
        paths = sorted(glob.glob(os.path.join(args.adbench, "*.npz")))
        if args.quick:
            paths = [p for p in paths if Path(p).stem in QUICK_ADBENCH]
        streams += [adbench_stream(p, seed=0, limit=args.records) for p in paths]
    rows: list[dict[str, Any]] = []
    for stream in streams:
        started = time.perf_counter()
        rows += evaluate(stream, detectors, args.pysad_limit, args.seed)
        print(
            f"{stream.name}: {len(stream.y)} records, {time.perf_counter() - started:.1f}s", file=sys.stderr
        )
    prefix = args.pysad_limit
    summary = summarise(rows)
    print_tables(rows, summary, prefix)
    speed = throughput(args.speed_records, args.pysad_limit, detectors, args.seed)
    print_throughput(speed)
    if args.json_path:
        meta = {
            "records": args.records,
            "pysad_limit": args.pysad_limit,
            "batch": BATCH,
            "seed": args.seed,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
        }
        Path(args.json_path).write_text(
            json.dumps({"meta": meta, "summary": summary, "throughput": speed, "rows": rows}, indent=1)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
