"""Training and scoring throughput (rows/s) of adcore-torch's detectors, on the CPU or CUDA.

The autoencoder trains for ``--epochs`` epochs on all ``--rows`` x ``--features`` rows
(no validation split, so every row is a training row) and then scores them; the other
detectors are fitted for one epoch on ``--fit-rows`` rows and score all rows (the
sequence autoencoder scores ``--seq-rows`` time steps, each in up to ``window`` windows).
Data are N(0, 1) float64. Prints a table and writes JSON.

    python benchmarks/torch_bench.py --device cpu  --output torch_bench_cpu.json
    python benchmarks/torch_bench.py --device cuda --output torch_bench_cuda.json
    python benchmarks/torch_bench.py --device cuda --batch-size 4096 --output torch_bench_cuda_4096.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

DETECTORS = ("autoencoder", "vae", "deepsvdd", "seq-autoencoder")


def machine(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus_available": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "device": device,
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def timed_scores(detector: Any, X: np.ndarray) -> float:
    """Seconds to score ``X`` once, after a small warm-up call (allocator, kernels, CUDA context)."""
    detector.decision_function(X[:1024])
    started = time.perf_counter()
    detector.decision_function(X)
    return time.perf_counter() - started


def bench(name: str, X: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from adcore_torch import detectors

    cls = {
        "autoencoder": detectors.AutoEncoder,
        "vae": detectors.VAE,
        "deepsvdd": detectors.DeepSVDD,
        "seq-autoencoder": detectors.SequenceAutoEncoder,
    }[name]
    is_ae = name == "autoencoder"
    fit_rows = X if is_ae else X[: args.fit_rows]
    score_rows = X[: args.seq_rows] if name == "seq-autoencoder" else X
    sizes = {"batch_size": args.batch_size} if args.batch_size else {}
    detector = cls(
        epochs=args.epochs if is_ae else 1,
        **sizes,
        validation_fraction=0.0,
        device=args.device,
        precision=args.precision,
        random_state=0,
        verbose=not args.quiet,
    )
    started = time.perf_counter()
    detector.fit(fit_rows)
    fit_seconds = time.perf_counter() - started
    history = detector.history_
    train_seconds = sum(history["epoch_seconds"])
    score_seconds = timed_scores(detector, score_rows)
    return {
        "detector": f"torch:{name}",
        "fit_rows": int(fit_rows.shape[0]),
        "batch_size": detector.batch_size,
        "epochs": history["epochs_run"],
        "train_seconds": round(train_seconds, 3),
        "train_rows_per_s": round(fit_rows.shape[0] * history["epochs_run"] / train_seconds),
        "fit_seconds_total": round(fit_seconds, 3),
        "score_rows": int(score_rows.shape[0]),
        "score_seconds": round(score_seconds, 3),
        "score_rows_per_s": round(score_rows.shape[0] / score_seconds),
        "precision": history["precision"],
        "train_threads": history.get("threads"),
        "score_threads": torch.get_num_threads() if history["device"] == "cpu" else None,
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| detector | trained on | batch | epochs | train rows/s | scored rows | score rows/s | trained in |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['detector']} | {r['fit_rows']:,} | {r['batch_size']} | {r['epochs']} "
            f"| {r['train_rows_per_s']:,} | {r['score_rows']:,} | {r['score_rows_per_s']:,} "
            f"| {r['precision']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3, help="autoencoder training epochs")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="training batch size (default: each's own)"
    )
    parser.add_argument(
        "--fit-rows", type=int, default=100_000, help="rows the other detectors train on (1 epoch)"
    )
    parser.add_argument(
        "--seq-rows", type=int, default=1_000_000, help="time steps the sequence model scores"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--precision", default="auto", help="CUDA training precision: auto, bf16, fp16, fp32")
    parser.add_argument("--detectors", default=",".join(DETECTORS))
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--output", default="torch_bench.json")
    args = parser.parse_args()

    X = np.random.default_rng(0).normal(size=(args.rows, args.features))
    from adcore_torch.device import resolve_device

    device = str(resolve_device(args.device))
    rows = []
    for name in [d.strip() for d in args.detectors.split(",") if d.strip()]:
        row = bench(name, X, args)
        rows.append(row)
        print(json.dumps(row), flush=True)
    report = {"rows": args.rows, "features": args.features, "machine": machine(device), "results": rows}
    print()
    print(markdown(rows))
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
