"""ROC-AUC of adcore-torch's deep detectors on ADBench beside PyOD's AutoEncoder and classical detectors.

ADBench's unsupervised protocol: fit on all of X, score all of X, ROC-AUC against y.
Every detector runs with its defaults (a fixed seed), as a user who does not tune gets
it; adcore-torch's detectors go through ``adcore.Detector`` exactly as ``adcore run``
builds them. Prints a table (one row per dataset, mean ROC-AUC and total seconds per
detector at the bottom) and writes the figures to JSON.

    python benchmarks/torch_adbench.py --datasets /work/shared/datasets/adbench --output torch_adbench.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Scorer = Callable[[np.ndarray, int], np.ndarray]


def adcore_scorer(algo: str, **params: Any) -> Scorer:
    def score(X: np.ndarray, seed: int) -> np.ndarray:
        from adcore.domain.detector import Detector

        return Detector(algo, random_state=seed, verbose=False, **params).fit(X).decision_scores_

    return score


def pyod_scorer(path: str, **params: Any) -> Scorer:
    def score(X: np.ndarray, seed: int) -> np.ndarray:
        import importlib

        module, _, cls = path.rpartition(".")
        detector = getattr(importlib.import_module(module), cls)(**params)
        if "random_state" in detector.get_params():
            detector.set_params(random_state=seed)
        return detector.fit(X).decision_scores_

    return score


DETECTORS: dict[str, Scorer] = {
    "torch:autoencoder": adcore_scorer("torch:autoencoder"),
    "torch:vae": adcore_scorer("torch:vae"),
    "torch:deepsvdd": adcore_scorer("torch:deepsvdd"),
    "pyod AutoEncoder": pyod_scorer("pyod.models.auto_encoder.AutoEncoder", verbose=0, device="cpu"),
    "pyod IForest": pyod_scorer("pyod.models.iforest.IForest"),
    "pyod ECOD": pyod_scorer("pyod.models.ecod.ECOD"),
    "pyod HBOS": pyod_scorer("pyod.models.hbos.HBOS"),
}


def roc_auc(y: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, scores))


def run(datasets: list[Path], names: list[str], seed: int) -> dict[str, Any]:
    results: dict[str, dict[str, Any]] = {name: {"auc": {}, "seconds": {}} for name in names}
    for path in datasets:
        data = np.load(path)
        X, y = np.asarray(data["X"], dtype=np.float64), np.asarray(data["y"]).astype(int)
        for name in names:
            started = time.perf_counter()
            try:
                scores = DETECTORS[name](X, seed)
                auc: float | None = roc_auc(y, scores)
            except Exception as exc:  # a baseline that cannot run is reported, not fatal
                print(f"  {name} on {path.stem}: {type(exc).__name__}: {exc}")
                auc = None
            results[name]["auc"][path.stem] = auc
            results[name]["seconds"][path.stem] = round(time.perf_counter() - started, 3)
        row = "  ".join(f"{name}={results[name]['auc'][path.stem] or float('nan'):.3f}" for name in names)
        print(f"{path.stem:<16} {X.shape!s:<14} {row}", flush=True)
    for name in names:
        values = [v for v in results[name]["auc"].values() if v is not None]
        results[name]["mean_auc"] = float(np.mean(values)) if len(values) == len(datasets) else None
        results[name]["total_seconds"] = round(sum(results[name]["seconds"].values()), 1)
    return {
        "protocol": "fit on all X, score all X, ROC-AUC vs y; default parameters",
        "seed": seed,
        "datasets": [p.stem for p in datasets],
        "machine": {
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
        },
        "results": results,
    }


def markdown(report: dict[str, Any]) -> str:
    names = list(report["results"])
    lines = ["| dataset | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for ds in report["datasets"]:
        cells = [report["results"][n]["auc"][ds] for n in names]
        lines.append(f"| {ds} | " + " | ".join("n/a" if c is None else f"{c:.3f}" for c in cells) + " |")
    means = [report["results"][n]["mean_auc"] for n in names]
    lines.append("| **mean** | " + " | ".join("n/a" if m is None else f"**{m:.3f}**" for m in means) + " |")
    seconds = [report["results"][n]["total_seconds"] for n in names]
    lines.append("| seconds (all 16) | " + " | ".join(f"{s:.1f}" for s in seconds) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets", default="/work/shared/datasets/adbench", help="folder of ADBench .npz files"
    )
    parser.add_argument(
        "--detectors", default=",".join(DETECTORS), help="comma-separated, from: " + ", ".join(DETECTORS)
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="torch_adbench.json", help="JSON results file")
    args = parser.parse_args()
    names = [n.strip() for n in args.detectors.split(",") if n.strip()]
    unknown = [n for n in names if n not in DETECTORS]
    if unknown:
        parser.error(f"unknown detectors {unknown}")
    datasets = sorted(Path(args.datasets).glob("*.npz"), key=lambda p: int(p.stem.split("_")[0]))
    report = run(datasets, names, args.seed)
    print()
    print(markdown(report))
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
