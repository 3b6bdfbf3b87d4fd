"""adcore's overhead over calling PyOD directly: fit + score of iforest and ecod.

Two workflows on the same seeded data (``--rows`` x ``--features``, default 100,000 x 20,
1% shifted outliers), each timed both ways:

- ``detect``: ``adcore.detect(X, algo="pyod:NAME", seed=S)`` (input validation, parameter
  validation, fit, threshold, labels, confidence, result) against PyOD's
  ``Class(contamination=0.1, random_state=S).fit(X)`` (which also sets
  ``decision_scores_``, ``threshold_`` and ``labels_``);
- ``fit+score``: ``adcore.Detector("pyod:NAME").fit(X).decision_function(X_new)`` against
  ``Class(...).fit(X).decision_function(X_new)``, ``X_new`` being as large as ``X``.

Runs alternate (adcore, PyOD, adcore, ...) after one untimed warm-up of each, so drift in
machine load hits both sides; the figure is the median of ``--repeats`` runs, and the
overhead is ``median(adcore) / median(PyOD) - 1``. Both sides give the same scores (checked).

Usage::

    python benchmarks/overhead_pyod.py --repeats 7 --output overhead_pyod.json
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

import adcore

CLASSES = {"iforest": "pyod.models.iforest:IForest", "ecod": "pyod.models.ecod:ECOD"}
TARGET = 0.05


def make_data(rows: int, features: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features))
    X[: rows // 100] += rng.uniform(3.0, 6.0, size=(rows // 100, features))
    return X[rng.permutation(rows)]


def pyod_class(name: str) -> Any:
    module, _, attr = CLASSES[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def pyod_params(name: str, seed: int) -> dict[str, Any]:
    params: dict[str, Any] = {"contamination": 0.1}
    if "random_state" in inspect.signature(pyod_class(name)).parameters:
        params["random_state"] = seed
    return params


def run_pyod(name: str, workflow: str, X: np.ndarray, X_new: np.ndarray, seed: int) -> np.ndarray:
    model = pyod_class(name)(**pyod_params(name, seed)).fit(X)
    return model.decision_scores_ if workflow == "detect" else model.decision_function(X_new)


def run_adcore(name: str, workflow: str, X: np.ndarray, X_new: np.ndarray, seed: int) -> np.ndarray:
    if workflow == "detect":
        return adcore.detect(X, algo=f"pyod:{name}", seed=seed).scores
    return adcore.Detector(f"pyod:{name}", random_state=seed).fit(X).decision_function(X_new)


def timed(fn: Any, *args: Any) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def measure(
    name: str, workflow: str, X: np.ndarray, X_new: np.ndarray, seed: int, repeats: int
) -> dict[str, Any]:
    args = (name, workflow, X, X_new, seed)
    _, direct = timed(run_pyod, *args)  # warm-up: imports, numba compilation, caches
    _, ours = timed(run_adcore, *args)
    np.testing.assert_allclose(ours, direct, rtol=1e-12, atol=0)
    times: dict[str, list[float]] = {"adcore": [], "pyod": []}
    for _ in range(repeats):
        times["adcore"].append(timed(run_adcore, *args)[0])
        times["pyod"].append(timed(run_pyod, *args)[0])
    a, p = statistics.median(times["adcore"]), statistics.median(times["pyod"])
    return {
        "algorithm": name,
        "workflow": workflow,
        "adcore_median_s": a,
        "pyod_median_s": p,
        "overhead": a / p - 1.0,
        "overhead_ms": (a - p) * 1000.0,
        "within_target": a / p - 1.0 <= TARGET,
        "adcore_runs_s": times["adcore"],
        "pyod_runs_s": times["pyod"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per side (median reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--algos", default="iforest,ecod")
    parser.add_argument("--workflows", default="detect,fit+score")
    parser.add_argument("--output", type=Path, default=Path("overhead_pyod.json"))
    args = parser.parse_args()

    X = make_data(args.rows, args.features, args.seed)
    X_new = make_data(args.rows, args.features, args.seed + 1)
    rows = []
    for name in args.algos.split(","):
        for workflow in args.workflows.split(","):
            rows.append(measure(name, workflow, X, X_new, args.seed, args.repeats))
            r = rows[-1]
            print(f"  measured {name} {workflow}: {r['overhead']:+.2%}", flush=True)

    header = (
        f"{'algorithm':<10} {'workflow':<10} {'PyOD (s)':>9} {'adcore (s)':>10} {'overhead':>9} {'(ms)':>8}"
    )
    print(f"\n{args.rows:,} x {args.features}, median of {args.repeats} runs, target <= {TARGET:.0%}\n")
    print(header)
    print("-" * len(header))
    for r in rows:
        flag = "" if r["within_target"] else "  over target"
        print(
            f"{r['algorithm']:<10} {r['workflow']:<10} {r['pyod_median_s']:>9.3f} "
            f"{r['adcore_median_s']:>10.3f} {r['overhead']:>+9.2%} {r['overhead_ms']:>+8.1f}{flag}"
        )

    import pyod

    result = {
        "benchmark": "overhead_pyod",
        "rows": args.rows,
        "features": args.features,
        "repeats": args.repeats,
        "seed": args.seed,
        "target_overhead": TARGET,
        "versions": {
            "adcore": adcore.__version__,
            "pyod": pyod.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
        "results": rows,
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
