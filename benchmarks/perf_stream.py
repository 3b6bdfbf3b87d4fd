"""Streams with any detector: `adcore stream` file to file vs River, and the wrapper's cost per refit.

Part 1, records/s end to end. Every contender reads the same ``--records`` JSON lines (``id``
plus ``--features`` normal features, 1% far out; ``stream_bench.write_stream``) and writes one
scored JSON line per record:

- ``adcore stream --algo A --source file://IN --sink file://OUT --window 2000 -q`` for each
  ``--algos`` (default core:hbos, pyod:hbos, pyod:ecod, pyod:copod), a new process each run,
  start-up included (interpreter, imports, PyOD's import; numba's kernels come from the
  on-disk cache, which an untimed first run fills, as on any machine after its first run);
- River's ``MinMaxScaler() | HalfSpaceTrees(seed=0)`` (online scaling, as HalfSpaceTrees
  expects features in [0, 1]), per record ``orjson.loads``, ``score_one``, ``learn_one`` and
  ``orjson.dumps`` of the record with its score, file to file, in this process (no start-up).

The ratio is adcore's records/s over River's (goal: >= 10x). Each contender runs
``--repeats`` times, interleaved; the best run counts. CPU seconds are printed too: on a
loaded machine they move much less than wall time.

Part 2, the cost of one refit. A stream refits its detector on the window every ``--window``
records through ``StreamModel.refit`` (a fresh ``adcore.Detector``: parameter validation,
the library's fit, threshold, labels). On the same window (``--window`` rows of the stream),
this times ``StreamModel.refit`` against the library's own fit (PyOD's class, or the core's
estimator, built and fitted directly), alternating, median of ``--refits`` each (goal: the
wrapper at most 5% over), and lists where the wrapper's own time goes (cProfile, adcore
functions' inclusive time, the library's fit excluded, per refit).

Usage::

    pip install river
    python benchmarks/perf_stream.py --records 100000 --repeats 3 --json perf_stream.json
    python benchmarks/perf_stream.py --quick          # 20,000 records, 1 repeat
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_machine import load_average, machine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stream_bench import Clock, _env, count_lines, write_stream

ALGOS = "core:hbos,pyod:hbos,pyod:ecod,pyod:copod"
TARGET_X_RIVER = 10.0
TARGET_REFIT_OVERHEAD = 0.05


def run_cli(algo: str, src: Path, out: Path, window: int) -> tuple[float, float]:
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "adcore.cli.main", "stream", "--algo", algo, "--source", f"file://{src}"]
    cmd += ["--sink", f"file://{out}", "--window", str(window), "-q"]
    with Clock() as clock:
        subprocess.run(cmd, check=True, env=_env())
    return clock.wall, clock.cpu


def run_river(src: Path, out: Path, names: list[str]) -> tuple[float, float]:
    import orjson
    from river import anomaly, preprocessing

    model = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=0)
    with Clock() as clock, src.open("rb") as fin, out.open("wb") as fout:
        for line in fin:
            record = orjson.loads(line)
            x = {n: record[n] for n in names}
            record["score"] = model.score_one(x)
            model.learn_one(x)
            fout.write(orjson.dumps(record) + b"\n")
    return clock.wall, clock.cpu


def library_fit(algo: str) -> Any:
    """A callable fitting the library's own class on X, with the parameters adcore passes."""
    from adcore.services.spec import create_detector

    detector = create_detector(algo)
    params = detector.validated_params()
    factory = detector._factory()
    return lambda X: factory(**params).fit(X)


def refit_cost(algo: str, X: np.ndarray, names: list[str], refits: int) -> dict[str, Any]:
    from adcore.services.spec import create_detector
    from adcore.services.streaming import StreamModel

    model = StreamModel.from_algorithm(create_detector(algo))
    direct = library_fit(algo)
    model.refit(X, names)  # warm-up: imports, numba (from its cache), first-call costs
    direct(X)
    ours, theirs = [], []
    for _ in range(refits):
        started = time.perf_counter()
        model.refit(X, names)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        direct(X)
        theirs.append(time.perf_counter() - started)
    a, b = statistics.median(ours), statistics.median(theirs)

    profile = cProfile.Profile()
    profile.enable()
    for _ in range(refits):
        model.refit(X, names)
    profile.disable()
    stats = pstats.Stats(profile)
    where = []
    # Inclusive time of adcore's functions under the refit, but not the two that contain the
    # library's fit itself: what the wrapper adds, wherever (pydantic, numpy) it is spent.
    for (path, line, func), (_, _, _, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        outer = (path.endswith("model.py") and func == "refit") or (
            path.endswith("detector.py") and func == "fit"
        )
        library = "/adcore/builtin/" in path  # core:* detectors: the library is adcore's own
        if ("/adcore/" in path or "adcore_pyod" in path) and not outer and not library:
            name = f"{Path(path).name}:{line}({func})"
            where.append({"function": name, "ms_per_refit": cumtime * 1000 / refits})
    where.sort(key=lambda r: -r["ms_per_refit"])
    return {
        "algo": algo,
        "window": int(X.shape[0]),
        "adcore_refit_ms": round(a * 1000, 3),
        "library_fit_ms": round(b * 1000, 3),
        "overhead": round(a / b - 1.0, 4),
        "overhead_ms": round((a - b) * 1000, 3),
        "within_target": a / b - 1.0 <= TARGET_REFIT_OVERHEAD,
        "adcore_self_time_top": [dict(r, ms_per_refit=round(r["ms_per_refit"], 3)) for r in where[:6]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--window", type=int, default=2000)
    parser.add_argument("--algos", default=ALGOS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--refits", type=int, default=20, help="refits timed per side (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="20,000 records, 1 repeat, 5 refits")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    records, repeats, refits = (20_000, 1, 5) if args.quick else (args.records, args.repeats, args.refits)
    algos = args.algos.split(",")
    load_before = load_average()
    try:
        import river  # noqa: F401
    except ImportError:
        sys.exit("River is needed for the comparison: pip install river")

    with tempfile.TemporaryDirectory(prefix="adcore-perf-stream-") as tmp:
        root = Path(tmp)
        src = root / "events.jsonl"
        names = write_stream(src, records, args.features, args.seed)
        for algo in algos:  # untimed: bytecode, page cache, numba's on-disk cache
            run_cli(algo, src, root / "warm.jsonl", args.window)
        times: dict[str, list[tuple[float, float]]] = {a: [] for a in [*algos, "river"]}
        for repeat in range(repeats):
            for name in times:
                out = root / "out.jsonl"
                times[name].append(
                    run_river(src, out, names) if name == "river" else run_cli(name, src, out, args.window)
                )
                assert count_lines(out) == records, f"{name}: not one output line per record"
                wall, cpu = times[name][-1]
                print(f"  repeat {repeat + 1}: {name}: {wall:.2f}s wall, {cpu:.2f}s CPU", file=sys.stderr)

        import orjson

        with src.open("rb") as f:
            rows = [orjson.loads(next(f)) for _ in range(args.window)]
        X = np.array([[r[n] for n in names] for r in rows], dtype=np.float64)
        refit_rows = [refit_cost(algo, X, names, refits) for algo in algos]

    best = {name: (min(w for w, _ in runs), min(c for _, c in runs)) for name, runs in times.items()}
    river_wall, river_cpu = best["river"]
    stream_rows = []
    for name, (wall, cpu) in best.items():
        stream_rows.append(
            {
                "contender": "river MinMaxScaler | HalfSpaceTrees"
                if name == "river"
                else f"adcore stream {name}",
                "wall_seconds": round(wall, 3),
                "cpu_seconds": round(cpu, 3),
                "records_per_second": round(records / wall),
                "x_river": round(river_wall / wall, 2),
                "x_river_cpu": round(river_cpu / cpu, 2),
                "meets_target": name == "river" or river_wall / wall >= TARGET_X_RIVER,
            }
        )

    print(f"\n{records:,} records x {args.features} features, --window {args.window}, best of {repeats}")
    header = f"{'contender':<40} {'wall s':>7} {'CPU s':>7} {'records/s':>10} {'x River':>8} {'(CPU)':>6}"
    print(header)
    print("-" * len(header))
    for r in stream_rows:
        print(
            f"{r['contender']:<40} {r['wall_seconds']:>7.2f} {r['cpu_seconds']:>7.2f} "
            f"{r['records_per_second']:>10,} {r['x_river']:>8.2f} {r['x_river_cpu']:>6.2f}"
        )
    print(f"\nrefit on {args.window} rows, median of {refits} (goal: adcore <= library + 5%)")
    header = (
        f"{'algo':<12} {'library ms':>10} {'adcore ms':>10} {'overhead':>9} {'(ms)':>7}  where (inclusive ms)"
    )
    print(header)
    print("-" * len(header))
    for r in refit_rows:
        top = ", ".join(f"{t['function']} {t['ms_per_refit']:.2f}" for t in r["adcore_self_time_top"][:3])
        print(
            f"{r['algo']:<12} {r['library_fit_ms']:>10.2f} {r['adcore_refit_ms']:>10.2f} "
            f"{r['overhead']:>+9.1%} {r['overhead_ms']:>+7.2f}  {top}"
        )

    if args.json:
        payload = {
            "benchmark": "perf_stream",
            "records": records,
            "features": args.features,
            "window": args.window,
            "repeats": repeats,
            "refits": refits,
            "stream": stream_rows,
            "refit": refit_rows,
            "machine": machine(load_before),
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
