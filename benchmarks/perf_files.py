"""Files: `adcore score` and `adcore run` on a large CSV, stdlib vs pyarrow, and Parquet vs CSV.

Each case runs the real CLI in a subprocess, polling its resident memory (psutil, every
20 ms, as ``score_large.py`` does) for the peak:

- ``csv stdlib``: ``ADCORE_CSV_ENGINE=stdlib``, the csv/numpy reader and the csv module's
  writer (what every CSV run used before);
- ``csv arrow``: the default, pyarrow's streaming CSV reader and its writer where pyarrow is
  installed (``adcore.io.arrow_csv``);
- ``parquet``: the same data as Parquet in, scores as Parquet out.

``io`` reads the file in chunks of 100,000 rows and writes one score per row, without a
detector (the formats alone); ``score`` is ``adcore score --model M --input F --output O``
(chunked: memory follows ``--chunk-size``, default 100,000); ``run`` is ``adcore run --algo
core:hbos`` (the whole file in memory, fitted and scored). The cases alternate within each
repeat so load drift hits all of them; figures are medians. Both CSV engines must write
byte-identical outputs (checked).
Goals (issue 16): arrow >= 2x stdlib rows/s at about the same peak RSS; Parquet >= 5x CSV.

Usage::

    python benchmarks/perf_files.py --rows 2000000 --features 20 --repeats 3 --json perf_files.json
    python benchmarks/perf_files.py --quick          # 200,000 rows, 1 repeat: check the script
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_machine import load_average, machine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from score_large import REPO, head, run_tracked, write_csv

CASES = ("csv stdlib", "csv arrow", "parquet")
# "io": the file formats alone, without a detector: read every chunk, write a score per row.
IO_SCRIPT = """
import sys
import numpy as np
from adcore.data import ScoreWriter, iter_dataset_chunks
with ScoreWriter(sys.argv[2]) as w:
    for ds in iter_dataset_chunks(sys.argv[1], chunk_size=100_000):
        s = ds.X.sum(axis=1)
        w.write(s, (s > 3).astype(np.int64))
print("{}")
"""


def to_parquet(csv_path: Path, parquet_path: Path) -> None:
    """The CSV as Parquet, converted in blocks (bounded memory)."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    reader = pcsv.open_csv(csv_path, read_options=pcsv.ReadOptions(block_size=16 << 20))
    with pq.ParquetWriter(parquet_path, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--sample", type=int, default=50_000, help="rows the stored model is fitted on")
    parser.add_argument("--algo", default="core:hbos")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--commands", default="io,score,run", help="io (formats alone), score, run")
    parser.add_argument("--workdir", type=Path, default=None, help="where the data is generated (reused)")
    parser.add_argument("--quick", action="store_true", help="200,000 rows, 1 repeat")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    rows, repeats = (200_000, 1) if args.quick else (args.rows, args.repeats)
    load_before = load_average()

    workdir = args.workdir or Path(tempfile.gettempdir()) / "adcore-perf-files"
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / f"data_{rows}x{args.features}.csv"
    if not data.exists():
        print(f"generating {data} ...", file=sys.stderr)
        write_csv(data, rows, args.features)
    parquet = data.with_suffix(".parquet")
    if not parquet.exists():
        to_parquet(data, parquet)
    sample = workdir / "sample.csv"
    head(data, sample, args.sample)

    base_env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    base_env["ADCORE_STORE"] = str(workdir / f"store-{os.getpid()}")
    base_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), base_env.get("PYTHONPATH")]))
    cli = [sys.executable, "-m", "adcore.cli.main"]
    run_tracked(
        [*cli, "fit", "--algo", args.algo, "--input", str(sample), "--model", "bench", "--seed", "0"],
        base_env,
    )

    def command(which: str, case: str) -> tuple[list[str], dict[str, str], Path]:
        source, out = (parquet, workdir / "out.parquet") if case == "parquet" else (data, workdir / "out.csv")
        env = dict(base_env, ADCORE_CSV_ENGINE="stdlib" if case == "csv stdlib" else "auto")
        if which == "io":
            return [sys.executable, "-c", IO_SCRIPT, str(source), str(out)], env, out
        if which == "score":
            cmd = [*cli, "score", "--model", "bench", "--input", str(source), "--output", str(out), "--json"]
        else:
            cmd = [
                *cli,
                "run",
                "--algo",
                args.algo,
                "--seed",
                "0",
                "--input",
                str(source),
                "--output",
                str(out),
            ]
            cmd.append("--json")
        return cmd, env, out

    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    digests: dict[str, dict[str, str]] = {}
    for which in args.commands.split(","):
        results[which] = {case: [] for case in CASES}
        for _ in range(repeats):
            for case in CASES:
                cmd, env, out = command(which, case)
                r = run_tracked(cmd, env)
                results[which][case].append({"seconds": r["seconds"], "peak_rss_mb": r["peak_rss_mb"]})
                if case != "parquet":
                    digests.setdefault(which, {})[case] = digest(out)
                out.unlink(missing_ok=True)
            print(f"  {which}: repeat done", file=sys.stderr, flush=True)
        if len(set(digests[which].values())) != 1:
            raise SystemExit(f"{which}: the stdlib and arrow CSV outputs differ")

    size_mb = data.stat().st_size / 2**20
    table = []
    for which, per_case in results.items():
        for case, runs in per_case.items():
            seconds = statistics.median(r["seconds"] for r in runs)
            table.append(
                {
                    "command": which,
                    "case": case,
                    "seconds": round(seconds, 3),
                    "rows_per_second": round(rows / seconds),
                    "peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in runs), 1),
                    "runs": runs,
                }
            )
    by = {(r["command"], r["case"]): r for r in table}
    ratios = {}
    for which in results:
        old, new, pq = by[(which, "csv stdlib")], by[(which, "csv arrow")], by[(which, "parquet")]
        ratios[which] = {
            "arrow_vs_stdlib": round(new["rows_per_second"] / old["rows_per_second"], 2),
            "parquet_vs_csv_arrow": round(pq["rows_per_second"] / new["rows_per_second"], 2),
            "parquet_vs_csv_stdlib": round(pq["rows_per_second"] / old["rows_per_second"], 2),
            "peak_rss_arrow_vs_stdlib": round(new["peak_rss_mb"] / old["peak_rss_mb"], 2),
        }

    print(f"\n{rows:,} x {args.features} CSV ({size_mb:.0f} MB), model {args.algo}, median of {repeats}")
    header = f"{'command':<8} {'case':<11} {'seconds':>8} {'rows/s':>11} {'peak RSS MB':>12}"
    print(header)
    print("-" * len(header))
    for r in table:
        print(
            f"{r['command']:<8} {r['case']:<11} {r['seconds']:>8.2f} {r['rows_per_second']:>11,} "
            f"{r['peak_rss_mb']:>12.0f}"
        )
    for which, ratio in ratios.items():
        print(
            f"{which}: arrow {ratio['arrow_vs_stdlib']:.2f}x stdlib (goal 2x, peak RSS "
            f"{ratio['peak_rss_arrow_vs_stdlib']:.2f}x); parquet {ratio['parquet_vs_csv_arrow']:.2f}x "
            f"csv arrow, {ratio['parquet_vs_csv_stdlib']:.2f}x csv stdlib (goal 5x)"
        )

    if args.json:
        payload = {
            "benchmark": "perf_files",
            "rows": rows,
            "features": args.features,
            "csv_mb": round(size_mb, 1),
            "algo": args.algo,
            "repeats": repeats,
            "results": table,
            "ratios": ratios,
            "identical_csv_outputs": True,
            "machine": machine(load_before),
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
