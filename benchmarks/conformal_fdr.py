"""Does ``--threshold fdr:Q`` keep its promise? Realised false-discovery rate, power and p-value
validity of conformal p-values with Benjamini-Hochberg, per detector, over seeds.

Each seed: 1,000 Gaussian training rows (4 features), a test batch of 380 new inliers and 20
anomalies shifted 6 standard deviations along two random features (the task of
tests/test_conformal.py). The detector is fitted with ``threshold="fdr:Q"`` (5-fold
cross-conformal calibration), then labels the test batch. Reported, as means over seeds:

- FDR: false discoveries / discoveries (0 when nothing is labelled), the figure BH bounds by Q;
- power: anomalies labelled / anomalies;
- P(p <= Q | inlier): the p-values' validity on new inliers (should be at most about Q).

Usage::

    python benchmarks/conformal_fdr.py --seeds 20 --level 0.05 --json conformal_fdr.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_machine import load_average, machine


def task(seed: int, n_train: int = 1000, n_null: int = 380, n_anom: int = 20, dim: int = 4):
    rng = np.random.default_rng(seed)
    train = rng.normal(size=(n_train, dim))
    null = rng.normal(size=(n_null, dim))
    anomalies = rng.normal(size=(n_anom, dim))
    for row in anomalies:
        row[rng.choice(dim, 2, replace=False)] += rng.choice([-6.0, 6.0], 2)
    truth = np.r_[np.zeros(n_null, dtype=bool), np.ones(n_anom, dtype=bool)]
    return train, np.vstack([null, anomalies]), truth


def detectors() -> list[str]:
    names = ["core:hbos", "core:mahalanobis"]
    for module, name in (("pyod", "pyod:knn"), ("pyod", "pyod:iforest"), ("sklearn", "sklearn:iforest")):
        try:
            __import__(module)
        except ImportError:
            continue
        names.append(name)
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--level", type=float, default=0.05)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    from adcore import Detector

    load_before = load_average()
    rows = []
    for algo in detectors():
        fdr, power, validity = [], [], []
        started = time.perf_counter()
        for seed in range(args.seeds):
            train, test, truth = task(seed)
            detector = Detector(algo, threshold=f"fdr:{args.level}", random_state=seed).fit(train)
            flagged = detector.predict(test).astype(bool)
            fdr.append((flagged & ~truth).sum() / max(int(flagged.sum()), 1))
            power.append((flagged & truth).sum() / truth.sum())
            validity.append(float((detector.p_values(test[~truth]) <= args.level).mean()))
        rows.append(
            {
                "detector": algo,
                "fdr": round(float(np.mean(fdr)), 4),
                "fdr_seed_max": round(float(np.max(fdr)), 4),
                "power": round(float(np.mean(power)), 4),
                "p_le_level_under_null": round(float(np.mean(validity)), 4),
                "seconds": round(time.perf_counter() - started, 2),
            }
        )
    print(f"fdr:{args.level}, {args.seeds} seeds, 1,000 training rows, 380 inliers + 20 anomalies per batch")
    print(f"{'detector':18}{'FDR':>8}{'max':>8}{'power':>8}{'P(p<=Q|inlier)':>16}{'s':>8}")
    for r in rows:
        print(
            f"{r['detector']:18}{r['fdr']:>8.3f}{r['fdr_seed_max']:>8.3f}{r['power']:>8.3f}"
            f"{r['p_le_level_under_null']:>16.3f}{r['seconds']:>8.1f}"
        )
    if args.json:
        payload = {"benchmark": "conformal_fdr", "level": args.level, "seeds": args.seeds, "rows": rows}
        args.json.write_text(json.dumps({**payload, "machine": machine(load_before)}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
