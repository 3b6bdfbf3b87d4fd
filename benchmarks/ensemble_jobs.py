"""Parallel member fits: does an ensemble of k detectors take about half their summed time on 2 cores?

For each dataset and member list this measures, in one process and after a warm-up fit (so
library imports are not counted):

- each member's own fit time, one after another (their sum, and the slowest one, which no
  schedule can beat);
- the ensemble with ``jobs=1`` (members in sequence, plus normalising and combining);
- the ensemble with ``jobs=-1`` in threads (the default) and in worker processes, whose
  first fit also pays the workers' start-up and imports (reported separately).

    python benchmarks/ensemble_jobs.py --data 100000x20 --data ../shared/datasets/adbench/32_shuttle.npz \
        --members iforest,ecod,copod,hbos --members iforest,ecod,copod,hbos,knn --output ensemble_jobs.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

import adcore
from adcore.builtin.ensemble import effective_jobs


def load(spec: str) -> tuple[str, np.ndarray]:
    if spec.endswith(".npz"):
        return Path(spec).stem, np.load(spec)["X"].astype(np.float64)
    rows, features = (int(v) for v in spec.lower().split("x"))
    return f"normal {rows}x{features}", np.random.default_rng(0).normal(size=(rows, features))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best_of(repeats: int, fn) -> float:
    return min(timed(fn) for _ in range(repeats))


def measure(X: np.ndarray, members: list[str], repeats: int) -> dict:
    def ensemble(**params):
        return adcore.create_detector(",".join(members), random_state=0, **params)

    for name in members:  # imports and first-call caches, so they are not timed below
        adcore.create_detector(name, random_state=0).fit(X[:256])
    singles = {
        name: best_of(repeats, lambda n=name: adcore.create_detector(n, random_state=0).fit(X))
        for name in members
    }
    cold_processes = timed(lambda: ensemble(jobs=-1, backend="processes").fit(X))
    row = {
        "rows": int(X.shape[0]),
        "features": int(X.shape[1]),
        "members": members,
        "member_fit_s": {k: round(v, 3) for k, v in singles.items()},
        "sum_s": round(sum(singles.values()), 3),
        "slowest_member_s": round(max(singles.values()), 3),
        "ensemble_jobs1_s": round(best_of(repeats, lambda: ensemble(jobs=1).fit(X)), 3),
        "ensemble_threads_s": round(best_of(repeats, lambda: ensemble(jobs=-1).fit(X)), 3),
        "ensemble_processes_warm_s": round(
            best_of(repeats, lambda: ensemble(jobs=-1, backend="processes").fit(X)), 3
        ),
        "ensemble_processes_first_s": round(cold_processes, 3),
    }
    row["threads_vs_sum"] = round(row["ensemble_threads_s"] / row["sum_s"], 3)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", help="ROWSxFEATURES (normal noise) or an .npz file")
    parser.add_argument("--members", action="append", help="comma-separated member list")
    parser.add_argument("--repeats", type=int, default=3, help="best of N per figure")
    parser.add_argument("--output", help="write the rows as JSON here")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = []
    for spec in args.data or ["100000x20"]:
        name, X = load(spec)
        for members in args.members or ["iforest,ecod,copod,hbos"]:
            row = {"dataset": name, **measure(X, members.split(","), args.repeats)}
            rows.append(row)
            print(
                f"{name:<22} {members:<30} sum {row['sum_s']:6.2f}s  "
                f"slowest {row['slowest_member_s']:6.2f}s  "
                f"jobs=1 {row['ensemble_jobs1_s']:6.2f}s  threads {row['ensemble_threads_s']:6.2f}s "
                f"({row['threads_vs_sum']:.2f} of sum)  processes {row['ensemble_processes_warm_s']:6.2f}s "
                f"(first {row['ensemble_processes_first_s']:.2f}s)",
                flush=True,
            )
    meta = {
        "cores": effective_jobs(-1, 1 << 10),
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
    }
    if args.output:
        Path(args.output).write_text(json.dumps({"machine": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
