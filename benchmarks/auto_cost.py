"""What ``core:auto`` (the default detector) costs against isolation forest alone, by data size.

``auto`` fits four detectors (three seeds of one) where ``pyod:iforest`` fits one, and past
``MAX_FIT_ROWS`` rows fits all but the anchor on a sample and scores every row with them.
This prints, per size, the fit-and-score-every-row seconds of both (in-process, after one
warm-up fit so that imports are not counted) and their ratio, and writes JSON. Data: N(0, 1)
rows of ``--features`` features with 1% shifted by 4 along every feature; the ROC-AUC of
both is printed as a sanity check (this is not a quality benchmark: see auto_select.py).

    python benchmarks/auto_cost.py --rows 10000,100000,1000000 --json auto_cost.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adcore.services.spec import build_detector
from adcore.testing import roc_auc


def make_data(rows: int, features: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features))
    y = np.zeros(rows, dtype=np.int64)
    anomalies = rng.choice(rows, size=max(1, rows // 100), replace=False)
    X[anomalies] += 4.0
    y[anomalies] = 1
    return X, y


def timed_fit(name: str, X: np.ndarray) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    detector = build_detector(name, {"random_state": 0}).fit(X)
    return time.perf_counter() - started, detector.decision_scores_


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="10000,100000,1000000")
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    warm, _ = make_data(2000, args.features)
    for name in ("core:auto", "pyod:iforest"):
        timed_fit(name, warm)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print("| rows | features | auto s | iforest s | auto / iforest | auto ROC-AUC | iforest ROC-AUC |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    results = []
    for rows in (int(r) for r in args.rows.split(",")):
        X, y = make_data(rows, args.features)
        auto_s, auto_scores = timed_fit("core:auto", X)
        forest_s, forest_scores = timed_fit("pyod:iforest", X)
        row = {
            "rows": rows,
            "features": args.features,
            "auto_seconds": round(auto_s, 2),
            "iforest_seconds": round(forest_s, 2),
            "ratio": round(auto_s / forest_s, 2),
            "auto_roc_auc": round(roc_auc(y, auto_scores), 4),
            "iforest_roc_auc": round(roc_auc(y, forest_scores), 4),
        }
        results.append(row)
        print(
            f"| {rows:,} | {args.features} | {auto_s:.2f} | {forest_s:.2f} | {row['ratio']:.1f}x | "
            f"{row['auto_roc_auc']:.4f} | {row['iforest_roc_auc']:.4f} |",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps({"results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
