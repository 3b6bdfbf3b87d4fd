"""Benchmark adcore's drift detectors on synthetic streams with known change points.

Each stream is N(0, 1) noise of ``--records`` values, fed to every detector (default
settings, no reference: the window tests take the first window as theirs) in micro-batches
of ``--batch`` values, as the streaming service does. Streams:

- ``mean-shift``: the mean jumps by 1 standard deviation at the change point;
- ``variance``: the standard deviation jumps from 1 to 2 at the change point;
- ``gradual``: the mean rises linearly from 0 to 1 over the 2,000 records after the change
  point, then stays at 1;
- ``stationary``: no change at all.

Reported per detector and stream (over ``--seeds`` seeds):

- delay: records from the change point to the first detection at or after it (mean over the
  seeds where the change was detected; for ``gradual`` counted from the start of the ramp);
- missed: seeds with no detection at or after the change point;
- false alarms per 100k: detections before the change point (or anywhere on the stationary
  stream), per 100,000 change-free records;
- throughput: records per second through ``update`` (this process, one core).

Usage::

    python benchmarks/drift_bench.py --records 100000 --seeds 5 --output drift_bench.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

try:
    from adcore.domain.drift import DRIFT_DETECTORS, create_drift_detector
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from adcore.domain.drift import DRIFT_DETECTORS, create_drift_detector

STREAMS = ("mean-shift", "variance", "gradual", "stationary")
RAMP = 2_000


def make_stream(kind: str, records: int, change: int, seed: int) -> np.ndarray:
    """N(0, 1) noise with the change ``kind`` at ``change`` (seeded, same for every detector)."""
    x = np.random.default_rng(seed).normal(size=records)
    if kind == "mean-shift":
        x[change:] += 1.0
    elif kind == "variance":
        x[change:] *= 2.0
    elif kind == "gradual":
        ramp = np.minimum(np.arange(records - change) / RAMP, 1.0)
        x[change:] += ramp
    elif kind != "stationary":
        raise ValueError(kind)
    return x


def run_one(name: str, x: np.ndarray, batch: int) -> tuple[list[int], float]:
    """Detection indices and the seconds spent in ``update``."""
    detector = create_drift_detector(name)
    indices: list[int] = []
    elapsed = 0.0
    for start in range(0, len(x), batch):
        chunk = x[start : start + batch]
        t0 = time.perf_counter()
        signals = detector.update(chunk)
        elapsed += time.perf_counter() - t0
        indices.extend(s.index for s in signals)
    return indices, elapsed


def summarise(
    name: str, kind: str, runs: list[tuple[list[int], float]], records: int, change: int
) -> dict[str, Any]:
    delays: list[int] = []
    missed = 0
    false_alarms = 0
    change_free = 0
    for indices, _ in runs:
        if kind == "stationary":
            false_alarms += len(indices)
            change_free += records
            continue
        false_alarms += sum(i < change for i in indices)
        change_free += change
        after = [i for i in indices if i >= change]
        if after:
            delays.append(after[0] - change)
        else:
            missed += 1
    seconds = sum(t for _, t in runs)
    return {
        "detector": name,
        "stream": kind,
        "delay_mean": float(np.mean(delays)) if delays else None,
        "delay_max": int(max(delays)) if delays else None,
        "missed": None if kind == "stationary" else missed,
        "false_alarms": false_alarms,
        "false_alarms_per_100k": false_alarms / change_free * 100_000,
        "throughput_records_per_s": records * len(runs) / seconds if seconds else None,
        "detections": [indices for indices, _ in runs],
    }


def render(rows: list[dict[str, Any]], title: str) -> None:
    header = ["detector", "stream", "delay (mean)", "missed", "false alarms /100k", "records/s"]
    cells = [
        [
            r["detector"],
            r["stream"],
            "-" if r["delay_mean"] is None else f"{r['delay_mean']:.0f}",
            "-" if r["missed"] is None else str(r["missed"]),
            f"{r['false_alarms_per_100k']:.2f}",
            f"{r['throughput_records_per_s']:,.0f}",
        ]
        for r in rows
    ]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
        print(title)
        print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
        print("  ".join("-" * w for w in widths))
        for c in cells:
            pairs = enumerate(zip(c, widths, strict=True))
            print("  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in pairs))
        return
    table = Table(title=title)
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i < 2 else "right")
    for c in cells:
        table.add_row(*c)
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="values per stream")
    parser.add_argument("--seeds", type=int, default=5, help="streams per kind (seeds 0..n-1)")
    parser.add_argument("--change-at", type=int, default=None, help="change point (default: records // 2)")
    parser.add_argument("--batch", type=int, default=100, help="micro-batch size passed to update")
    parser.add_argument("--detectors", default=",".join(DRIFT_DETECTORS), help="comma-separated names")
    parser.add_argument("--output", type=Path, default=Path("drift_bench.json"), help="JSON results")
    args = parser.parse_args(argv)
    change = args.records // 2 if args.change_at is None else args.change_at
    if not 0 < change < args.records or args.seeds < 1 or args.batch < 1:
        parser.error("need 0 < change-at < records, seeds >= 1, batch >= 1")
    names = [n.strip() for n in args.detectors.split(",") if n.strip()]

    rows = []
    for name in names:
        for kind in STREAMS:
            runs = [
                run_one(name, make_stream(kind, args.records, change, seed), args.batch)
                for seed in range(args.seeds)
            ]
            rows.append(summarise(name, kind, runs, args.records, change))

    title = (
        f"drift detectors, defaults: {args.records:,} records/stream, change at {change:,}, "
        f"{args.seeds} seeds, batches of {args.batch}"
    )
    render(rows, title)
    result = {
        "config": {
            "records": args.records,
            "seeds": args.seeds,
            "change_at": change,
            "batch": args.batch,
            "gradual_ramp": RAMP,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "machine": platform.machine(),
        },
        "results": rows,
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
