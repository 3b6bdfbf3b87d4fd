"""Many series through ``adcore stream --algo ts:NAME --series host``: points/s and memory.

The stream: ``--series`` series (10,000 by default) sending one point per second each,
interleaved (second 0 of every series, then second 1...), ``--points`` points per series,
as JSON lines ``{"host": "h00042", "ts": 1700000000, "value": 41.7}``: a level per series,
a seasonal swing and noise. Each series warms up on its first ``W`` points (the detector's
default warm-up, ``--warmup`` to change it), then every point is scored.

Two contenders, both over the same file (generated once, cached in ``--data-dir``):

- **in-process**: :class:`adcore.timeseries.stream.SeriesStreamService` fed the file's
  lines in micro-batches of ``--batch-size`` (``process()``), output encoded and discarded;
  the warm-up seconds and the scored seconds are timed apart, and the process RSS (psutil)
  is read before the service exists, after the warm-up (every series created and fitted)
  and at the end: RSS growth / series is the memory a series costs, all included;
- **CLI, file -> file**: ``adcore stream --algo ts:auto --series host --time ts --source
  file://IN --sink file://OUT`` in a subprocess, interpreter start-up included; its peak
  RSS minus that of the same command on an empty file, per series.

``state_nbytes`` per series is the detector's own count of its numpy buffers (what the
RSS growth should be close to). The headline is the scored phase's points/s against what
10,000 series at one point per second need (10,000 points/s).

Usage::

    python benchmarks/ts_stream_scale.py --series 10000 --points 130 --output ts_stream_scale.json
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_machine import load_average, machine  # noqa: E402

T0 = 1_700_000_000


def generate(path: Path, n_series: int, n_points: int, seed: int) -> None:
    """The interleaved stream, one second (one point of every series) at a time."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(10, 100, n_series)
    phase = rng.uniform(0, 2 * np.pi, n_series)
    names = [f"h{s:05d}" for s in range(n_series)]
    tmp = path.with_suffix(".part")
    with tmp.open("w") as f:
        for t in range(n_points):
            values = level + 5 * np.sin(2 * np.pi * t / 60 + phase) + rng.standard_normal(n_series)
            f.writelines(
                f'{{"host":"{h}","ts":{T0 + t},"value":{v:.4f}}}\n'
                for h, v in zip(names, values, strict=True)
            )
    tmp.rename(path)


class NullSink:
    """Counts the output lines and drops them (the in-process run measures scoring, not disk)."""

    def __init__(self) -> None:
        self.lines = 0

    def write(self, value: bytes, metadata: Any = None) -> None:
        self.lines += 1

    def write_many(self, values: list[bytes], metadata: list[Any]) -> None:
        self.lines += len(values)

    def flush(self) -> None:
        """Nothing buffered."""

    def close(self) -> None:
        """Nothing to release."""


def rss() -> int:
    import psutil

    gc.collect()
    return int(psutil.Process().memory_info().rss)


def in_process(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    from adcore.timeseries.stream import open_series_stream

    with path.open("rb") as f:
        lines = f.read().splitlines()
    # a small stream first, so the imports and first-use caches are not counted per series
    with open_series_stream(lines[:500], NullSink(), algo=args.algo, series="host") as primer:
        primer.run()
    rss_before = rss()
    sink = NullSink()
    stream = open_series_stream(
        [],
        sink,
        algo=args.algo,
        series="host",
        time_field="ts",
        warmup=args.warmup,
        batch_size=args.batch_size,
    )
    service = stream.service
    warmup = service.warmup
    split = min(len(lines), warmup * args.series)  # the first W seconds: every series warming up
    phases: dict[str, dict[str, float]] = {}
    for name, part in (("warm-up", lines[:split]), ("scored", lines[split:])):
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(part), args.batch_size):
            service.process(part[i : i + args.batch_size])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        phases[name] = {"points": len(part), "wall_s": wall, "cpu_s": cpu, "rss": rss()}
    stream.close()
    n = service.stats.series_seen
    assert sink.lines == len(lines), (sink.lines, len(lines))
    total_wall = sum(p["wall_s"] for p in phases.values())
    scored = phases["scored"]
    return {
        "warmup": warmup,
        "points": len(lines),
        "series": n,
        "wall_s": total_wall,
        "points_per_s": len(lines) / total_wall,
        "warmup_points_per_s": phases["warm-up"]["points"] / phases["warm-up"]["wall_s"],
        "scored_points_per_s": scored["points"] / scored["wall_s"] if scored["points"] else None,
        "scored_us_per_point_cpu": 1e6 * scored["cpu_s"] / scored["points"] if scored["points"] else None,
        "rss_before": rss_before,
        "rss_growth_per_series_after_warmup": (phases["warm-up"]["rss"] - rss_before) / n,
        "rss_growth_per_series": (scored["rss"] - rss_before) / n,
        "state_nbytes_per_series": service.state_nbytes() / max(1, len(service.series_keys())),
        "anomalies": service.stats.anomalies,
        "phases": phases,
    }


def cli(path: Path, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["ADCORE_DISABLE_PLUGIN_AUTOLOAD"] = "1"

    def run(source: Path, out: Path) -> tuple[float, float, int]:
        """Wall seconds, CPU seconds (to the last sample) and sampled peak RSS of one command."""
        out.unlink(missing_ok=True)
        command = [sys.executable, "-m", "adcore.cli.main", "stream", "--algo", args.algo]
        command += ["--series", "host", "--time", "ts", "--batch-size", str(args.batch_size), "--quiet"]
        if args.warmup is not None:
            command += ["--warmup", str(args.warmup)]
        command += ["--source", f"file://{source}", "--sink", f"file://{out}"]
        import psutil

        wall = time.perf_counter()
        child = subprocess.Popen(command, env=env)
        watched = psutil.Process(child.pid)
        peak = 0
        # RSS sampled every 50 ms: the child's ru_maxrss would count this (large) process's RSS
        # at the fork; its CPU time comes from wait4, which reaps it.
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            with contextlib.suppress(psutil.Error):
                peak = max(peak, watched.memory_info().rss)
            time.sleep(0.05)
        wall = time.perf_counter() - wall
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            raise SystemExit(f"adcore stream exited {child.returncode}")
        return wall, usage.ru_utime + usage.ru_stime, peak

    empty = workdir / "empty.jsonl"
    empty.write_text("")
    start_wall, _, start_rss = run(empty, workdir / "empty.out")
    wall, cpu, peak = run(path, workdir / "scored.jsonl")
    written = sum(1 for _ in (workdir / "scored.jsonl").open("rb"))
    points = args.series * args.points
    assert written == points, (written, points)
    (workdir / "scored.jsonl").unlink()
    return {
        "points": points,
        "wall_s": wall,
        "cpu_s": cpu,
        "startup_s": start_wall,
        "points_per_s": points / wall,
        "points_per_s_minus_startup": points / max(wall - start_wall, 1e-9),
        "peak_rss": peak,
        "startup_rss": start_rss,  # sampled: the start-up's own peak may fall between samples
        "rss_per_series": (peak - start_rss) / args.series,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=130, help="points per series (warm-up included)")
    parser.add_argument("--algo", default="ts:auto")
    parser.add_argument("--warmup", type=int, default=None, help="default: the detector's own")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-cli", action="store_true", help="in-process only")
    parser.add_argument("--data-dir", default=tempfile.gettempdir(), help="where the stream file is cached")
    parser.add_argument("--output", default="ts_stream_scale.json", help="JSON results file")
    args = parser.parse_args()
    load_before = load_average()
    data = Path(args.data_dir) / f"ts_stream_{args.series}x{args.points}_s{args.seed}.jsonl"
    if not data.exists():
        print(f"generating {data} ...", file=sys.stderr)
        generate(data, args.series, args.points, args.seed)
    result: dict[str, Any] = {
        "series": args.series,
        "points_per_series": args.points,
        "algo": args.algo,
        "batch_size": args.batch_size,
        "data": str(data),
        "in_process": in_process(data, args),
    }
    if not args.no_cli:
        with tempfile.TemporaryDirectory() as tmp:
            result["cli"] = cli(data, args, Path(tmp))
    result["machine"] = machine(load_before)
    _table(result)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}", file=sys.stderr)


def _table(result: dict[str, Any]) -> None:
    mib = 1024 * 1024
    ip = result["in_process"]
    print(
        f"{result['series']} series x {result['points_per_series']} points ({result['algo']}, warm-up "
        f"{ip['warmup']}), {ip['points']} points"
    )
    rows = [
        ("in-process, all points", f"{ip['points_per_s']:,.0f} points/s", f"{ip['wall_s']:.1f} s"),
        ("in-process, warm-up points", f"{ip['warmup_points_per_s']:,.0f} points/s", "fit included"),
    ]
    if ip["scored_points_per_s"]:
        rows.append(
            (
                "in-process, scored points",
                f"{ip['scored_points_per_s']:,.0f} points/s",
                f"{ip['scored_us_per_point_cpu']:.0f} us CPU/point",
            )
        )
    rows += [
        ("state_nbytes / series", f"{ip['state_nbytes_per_series'] / 1024:.1f} KiB", "detector buffers"),
        ("RSS growth / series (warm)", f"{ip['rss_growth_per_series_after_warmup'] / 1024:.1f} KiB", ""),
        ("RSS growth / series (end)", f"{ip['rss_growth_per_series'] / 1024:.1f} KiB", ""),
    ]
    if "cli" in result:
        c = result["cli"]
        rows += [
            ("CLI file -> file", f"{c['points_per_s']:,.0f} points/s", f"{c['wall_s']:.1f} s"),
            (
                "CLI minus start-up",
                f"{c['points_per_s_minus_startup']:,.0f} points/s",
                f"{c['startup_s']:.2f} s",
            ),
            (
                "CLI peak RSS",
                f"{c['peak_rss'] / mib:.0f} MiB",
                f"{c['rss_per_series'] / 1024:.1f} KiB/series",
            ),
        ]
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>18}  {note}")
    need = result["series"]  # one point per series per second
    rate = ip["scored_points_per_s"] or ip["points_per_s"]
    print(f"{need:,} series at 1 point/s each need {need:,} points/s: headroom x{rate / need:.2f} (scored)")


if __name__ == "__main__":
    main()
