"""Benchmark ``adcore score`` on a CSV far larger than one chunk: peak memory and throughput.

Steps (all through the real CLI, in subprocesses, against a throwaway store):

1. generate a ``--rows`` x ``--features`` CSV of N(0, 1) values (4 decimals; reused when it
   already exists with the same shape);
2. ``adcore fit`` on the first ``--sample`` rows;
3. ``adcore score --chunk-size C`` over the whole file, for each ``--chunk-sizes`` value,
   polling the process's resident memory (psutil, every 20 ms) for its peak.

Reported per chunk size: wall seconds, rows per second, MB of CSV read per second, and
peak RSS (MB). The target is a peak under 600 MB for 2,000,000 x 20 at the default chunk
size (100,000): memory follows the chunk size, not the file.

Usage::

    python benchmarks/score_large.py --rows 2000000 --features 20 --output score_large.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BLOCK = 100_000


def write_csv(path: Path, rows: int, features: int, seed: int = 0) -> float:
    """Write the data in blocks (bounded memory here too); return the seconds it took."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".partial")
    with open(tmp, "w") as handle:
        handle.write(",".join(f"f{j}" for j in range(features)) + "\n")
        for start in range(0, rows, BLOCK):
            block = rng.normal(size=(min(BLOCK, rows - start), features))
            block[rng.random(block.shape[0]) < 0.001] += 6.0  # a few planted anomalies
            np.savetxt(handle, block, fmt="%.4f", delimiter=",")
    tmp.replace(path)
    return time.perf_counter() - started


def head(src: Path, dst: Path, rows: int) -> None:
    with open(src) as inp, open(dst, "w") as out:
        for i, line in enumerate(inp):
            if i > rows:
                break
            out.write(line)


def run_tracked(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run a command, polling its RSS (and its children's) for the peak."""
    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.strip()}")
    return {"seconds": seconds, "peak_rss_mb": peak / 2**20, "stdout": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--sample", type=int, default=50_000, help="rows the model is fitted on")
    parser.add_argument("--algo", default="core:hbos")
    parser.add_argument("--chunk-sizes", default="100000", help="comma-separated, e.g. 10000,100000,500000")
    parser.add_argument("--workdir", type=Path, default=None, help="where the CSV, store and output go")
    parser.add_argument("--output", type=Path, default=Path("score_large.json"), help="JSON results")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.gettempdir()) / "adcore-score-large"
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / f"data_{args.rows}x{args.features}.csv"
    generate_seconds = None
    if not data.exists():
        print(f"generating {data} ...", file=sys.stderr)
        generate_seconds = write_csv(data, args.rows, args.features)
    sample = workdir / "sample.csv"
    head(data, sample, args.sample)
    size_mb = data.stat().st_size / 2**20

    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    env["ADCORE_STORE"] = str(workdir / f"store-{os.getpid()}")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    cli = [sys.executable, "-m", "adcore.cli.main"]
    fit = run_tracked(
        [*cli, "fit", "--algo", args.algo, "--input", str(sample), "--model", "bench", "--seed", "0"], env
    )

    results = []
    for chunk in [int(c) for c in args.chunk_sizes.split(",")]:
        out = workdir / "scores.csv"
        cmd = [
            *cli,
            "score",
            "--model",
            "bench",
            "--input",
            str(data),
            "--output",
            str(out),
            "--chunk-size",
            str(chunk),
        ]
        run = run_tracked([*cmd, "--json"], env)
        summary = json.loads(run["stdout"])
        assert summary["n_rows"] == args.rows, summary
        results.append(
            {
                "chunk_size": chunk,
                "seconds": round(run["seconds"], 2),
                "rows_per_second": round(args.rows / run["seconds"]),
                "csv_mb_per_second": round(size_mb / run["seconds"], 1),
                "peak_rss_mb": round(run["peak_rss_mb"], 1),
                "n_anomalies": summary["n_anomalies"],
            }
        )
        out.unlink(missing_ok=True)

    print(
        f"adcore score: {args.rows:,} x {args.features} CSV ({size_mb:.0f} MB), model {args.algo} "
        f"fitted on {args.sample:,} rows ({fit['seconds']:.1f} s, peak {fit['peak_rss_mb']:.0f} MB)"
    )
    header = f"{'chunk size':>11} {'seconds':>8} {'rows/s':>10} {'MB/s':>6} {'peak RSS MB':>12}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['chunk_size']:>11,} {r['seconds']:>8.1f} {r['rows_per_second']:>10,} "
            f"{r['csv_mb_per_second']:>6.1f} {r['peak_rss_mb']:>12.0f}"
        )
    payload = {
        "benchmark": "score_large",
        "rows": args.rows,
        "features": args.features,
        "csv_mb": round(size_mb, 1),
        "algo": args.algo,
        "fit_sample_rows": args.sample,
        "fit_seconds": round(fit["seconds"], 2),
        "generate_seconds": round(generate_seconds, 1) if generate_seconds else None,
        "results": results,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
    }
    args.output.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
