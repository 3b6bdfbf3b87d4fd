"""Benchmark ``adcore stream`` against River's HalfSpaceTrees on one JSON-lines stream.

Every contender reads the same file of ``--records`` JSON objects (``id`` plus
``--features`` normal features, seeded) and writes one scored JSON line per record:

- ``adcore stream (CLI, file -> file)``: the command in a subprocess, end to end, interpreter
  start-up included: ``adcore stream --source file://IN --sink file://OUT --window 2000``;
  the same command on an empty file gives the fixed start-up cost, reported on its own row
  and subtracted in the "minus start-up" row (the steady-state rate of a long stream);
- ``adcore stream (CLI, stdin -> stdout)``: the same through pipes;
- ``adcore service (in-process)``: :class:`adcore.services.streaming.StreamingService` with the same
  settings, file source and file sink (no start-up);
- ``adcore service + ks drift``: the same with ``--drift ks --retrain on-drift``;
- ``river HalfSpaceTrees (file -> file)``: per record ``orjson.loads``, ``score_one``,
  ``learn_one`` and ``orjson.dumps`` of the record with its score (River's usual online
  loop; the same JSON library as adcore, so parsing costs the same);
- ``river HalfSpaceTrees (model only)``: ``score_one`` + ``learn_one`` on dicts parsed
  beforehand: River's best case, for reference.

adcore's settings are the CLI defaults except ``--window 2000``: HBOS, sliding window,
warm-up 2,000 records, refit every 2,000 (50 refits per 100,000). River's are its defaults
(10 trees, height 8, window 250). Each contender runs ``--repeats`` times, interleaved, and
the best run counts (the least disturbed by other load on the machine). Wall time is the
headline; CPU time (this process plus the finished subprocesses) is printed next to it
because on a loaded machine it is far more stable.

Usage::

    pip install river
    python benchmarks/stream_bench.py --records 100000 --features 10 --repeats 3 --output stream_bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Timing = tuple[float, float]  # (wall seconds, CPU seconds)
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WINDOW = 2000
STARTUP = "adcore stream (CLI) start-up, 0 records"
CLI = "adcore stream (CLI, file -> file)"
RIVER = "river HalfSpaceTrees (file -> file)"


class Clock:
    """Wall time and CPU time (this process plus finished children) of a ``with`` block.

    CPU seconds are reported next to wall seconds because a shared machine's load moves
    wall times by a factor of several between runs, while CPU time moves much less.
    """

    def __enter__(self) -> Clock:
        self._wall = time.perf_counter()
        self._cpu = self._cpu_now()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = self._cpu_now() - self._cpu

    @staticmethod
    def _cpu_now() -> float:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime


def write_stream(path: Path, records: int, features: int, seed: int) -> list[str]:
    """``records`` JSON lines with a 1% sprinkle of far-out rows (something to find)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(records, features))
    outliers = rng.random(records) < 0.01
    X[outliers] += rng.choice([-6.0, 6.0], size=(int(outliers.sum()), features))
    names = [f"f{j}" for j in range(features)]
    with path.open("w") as f:
        for i, row in enumerate(X):
            f.write(json.dumps({"id": i, **dict(zip(names, map(float, row), strict=True))}) + "\n")
    return names


def count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def _env() -> dict[str, str]:
    """The CLI's environment: no ADCORE_ switches, and cached bytecode allowed.

    ``PYTHONDONTWRITEBYTECODE`` (set on some CI machines) would make every run compile
    adcore's ~40 modules again (~80 ms); an installed package has its ``.pyc`` files, so
    the benchmark lets the warm-up run write them.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def run_cli_files(src: Path, out: Path) -> Timing:
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "adcore.cli.main", "stream", "--source", f"file://{src}",
           "--sink", f"file://{out}", "--window", str(WINDOW), "-q"]  # fmt: skip
    with Clock() as clock:
        subprocess.run(cmd, check=True, env=_env())
    return clock.wall, clock.cpu


def run_cli_pipes(src: Path, out: Path) -> Timing:
    cmd = [sys.executable, "-m", "adcore.cli.main", "stream", "--window", str(WINDOW), "-q"]
    with src.open("rb") as stdin, out.open("wb") as stdout, Clock() as clock:
        subprocess.run(cmd, check=True, env=_env(), stdin=stdin, stdout=stdout)
    return clock.wall, clock.cpu


def run_service(src: Path, out: Path, **config: Any) -> Timing:
    from adcore.messaging import open_sink, open_source
    from adcore.services.spec import create_detector
    from adcore.services.streaming import StreamConfig, StreamingService, StreamModel

    out.unlink(missing_ok=True)
    with Clock() as clock:
        cfg = StreamConfig(window=WINDOW, **config).validated()
        service = StreamingService(
            open_source(f"file://{src}"),
            open_sink(f"file://{out}"),
            StreamModel.from_algorithm(create_detector("core:hbos")),
            cfg,
        )
        service.run()
        service.close()
    return clock.wall, clock.cpu


def run_river_files(src: Path, out: Path, names: list[str]) -> Timing:
    import orjson
    from river import anomaly

    model = anomaly.HalfSpaceTrees(seed=0)
    with Clock() as clock, src.open("rb") as fin, out.open("wb") as fout:
        for line in fin:
            record = orjson.loads(line)
            x = {n: record[n] for n in names}
            record["score"] = model.score_one(x)
            model.learn_one(x)
            fout.write(orjson.dumps(record) + b"\n")
    return clock.wall, clock.cpu


def run_river_model_only(src: Path, names: list[str]) -> Timing:
    import orjson
    from river import anomaly

    with src.open("rb") as fin:
        xs = [{n: r[n] for n in names} for r in map(orjson.loads, fin)]
    model = anomaly.HalfSpaceTrees(seed=0)
    with Clock() as clock:
        for x in xs:
            model.score_one(x)
            model.learn_one(x)
    return clock.wall, clock.cpu


def summarise(times: dict[str, list[Timing]], records: int) -> list[dict[str, Any]]:
    """Best wall and best CPU time per contender, rates, and ratios to River (file -> file)."""
    best = {name: (min(w for w, _ in runs), min(c for _, c in runs)) for name, runs in times.items()}
    river_wall, river_cpu = best[RIVER]
    startup_wall, startup_cpu = best.pop(STARTUP)
    cli_wall, cli_cpu = best[CLI]
    rows: list[dict[str, Any]] = [_row(STARTUP, startup_wall, startup_cpu, None, None, None)]
    for name, (wall, cpu) in best.items():
        rows.append(_row(name, wall, cpu, records, river_wall, river_cpu))
        if name == CLI:
            steady_wall, steady_cpu = max(cli_wall - startup_wall, 1e-9), max(cli_cpu - startup_cpu, 1e-9)
            rows.append(
                _row(f"{CLI} minus start-up", steady_wall, steady_cpu, records, river_wall, river_cpu)
            )
    return rows


def _row(
    name: str, wall: float, cpu: float, records: int | None, river_wall: float | None, river_cpu: float | None
) -> dict[str, Any]:
    rate = round(records / wall) if records else None
    return {
        "contender": name,
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "records_per_second": rate,
        "x_river": round(river_wall / wall, 1) if river_wall else None,
        "records_per_cpu_second": round(records / cpu) if records else None,
        "x_river_cpu": round(river_cpu / cpu, 1) if river_cpu else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="stream_bench.json", help="JSON results file")
    args = parser.parse_args(argv)
    try:
        import river
    except ImportError:
        sys.exit("River is needed for the comparison: pip install river")

    with tempfile.TemporaryDirectory(prefix="adcore-stream-bench-") as tmp:
        root = Path(tmp)
        src = root / "events.jsonl"
        names = write_stream(src, args.records, args.features, args.seed)
        empty = root / "empty.jsonl"
        empty.touch()
        contenders: dict[str, Callable[[], Timing]] = {
            STARTUP: lambda: run_cli_files(empty, root / "none.jsonl"),
            CLI: lambda: run_cli_files(src, root / "cli.jsonl"),
            "adcore stream (CLI, stdin -> stdout)": lambda: run_cli_pipes(src, root / "pipe.jsonl"),
            "adcore service (in-process)": lambda: run_service(src, root / "svc.jsonl"),
            "adcore service + ks drift (in-process)": lambda: run_service(
                src, root / "drift.jsonl", drift="ks", retrain="on-drift"
            ),
            RIVER: lambda: run_river_files(src, root / "river.jsonl", names),
            "river HalfSpaceTrees (model only)": lambda: run_river_model_only(src, names),
        }
        outputs = {
            CLI: "cli.jsonl",
            "adcore stream (CLI, stdin -> stdout)": "pipe.jsonl",
            "adcore service (in-process)": "svc.jsonl",
            "adcore service + ks drift (in-process)": "drift.jsonl",
            RIVER: "river.jsonl",
        }
        run_service(empty, root / "warm.jsonl")  # imports and plugin loading: not part of any timing
        run_cli_files(empty, root / "warm-cli.jsonl")  # writes the bytecode cache, warms the page cache
        times: dict[str, list[Timing]] = {name: [] for name in contenders}
        for repeat in range(args.repeats):
            for name, run in contenders.items():
                times[name].append(run())
                if name in outputs:  # every contender wrote one line per record
                    n_out = count_lines(root / outputs[name])
                    assert n_out == args.records, f"{name}: {n_out} output lines for {args.records} records"
                wall, cpu = times[name][-1]
                print(f"  repeat {repeat + 1}: {name}: {wall:.2f}s wall, {cpu:.2f}s CPU", file=sys.stderr)

    rows = summarise(times, args.records)
    width = max(len(r["contender"]) for r in rows)
    head = [
        "wall s".rjust(7),
        "records/s".rjust(10),
        "x River".rjust(7),
        "CPU s".rjust(6),
        "x River".rjust(7),
    ]
    print(f"{'contender':<{width}}  " + "  ".join(head))
    for r in rows:
        cells = [
            f"{r['wall_seconds']:>7.2f}",
            f"{r['records_per_second']:>10,}" if r["records_per_second"] else f"{'-':>10}",
            f"{r['x_river']:>7.1f}" if r["x_river"] else f"{'-':>7}",
            f"{r['cpu_seconds']:>6.2f}",
            f"{r['x_river_cpu']:>7.1f}" if r["x_river_cpu"] else f"{'-':>7}",
        ]
        print(f"{r['contender']:<{width}}  " + "  ".join(cells))
    result = {
        "benchmark": "stream",
        "records": args.records,
        "features": args.features,
        "repeats": args.repeats,
        "window": WINDOW,
        "rows": rows,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "numpy": np.__version__,
            "river": river.__version__,
        },
        "command": "python benchmarks/stream_bench.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
