"""Guard what is fast: `adcore algos` start-up, and `adcore serve` against a bare FastAPI app.

Four figures, each with its goal (issue 16), measured side by side in one run:

1. ``adcore algos`` wall time with every installed plugin (a new process each run, median
   of ``--algos-runs``): at most 0.5 s.
2. ``POST /v1/detect`` with 50 rows x ``--features``: p99 latency of ``adcore serve
   --workers 1`` against a bare app (FastAPI + a pydantic body model + numpy, no adcore:
   parse ``{"data": [[...]]}``, a numpy histogram score per row, reply ``{"scores": [...]}``),
   one client at a time: adcore's p99 within 1.5x the bare app's.
3. The same with 50,000 rows: rows/s, adcore at least the bare app's.
4. Requests/s with 8 concurrent clients (50 rows) for ``--workers 1`` and ``--workers 2``:
   grows with workers up to the core count.

The servers run on loopback and share the machine with the clients, so on a small machine
they compete for the CPU: read the figures as a floor, and compare within one run.
``benchmarks/server_load.py`` supplies the server start-up and the load generator.

Usage::

    python benchmarks/perf_guard.py --json perf_guard.json
    python benchmarks/perf_guard.py --quick            # fewer requests: check the script
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_machine import load_average, machine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_load import REPO, free_port, payload, run_case, start_server, stop_server

# The bare app: what any FastAPI service doing this work needs, and nothing of adcore's.
BARE_APP = """
import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel


class Body(BaseModel):
    data: list[list[float]]


app = FastAPI()


@app.post("/v1/detect")
def detect(body: Body) -> dict:
    X = np.asarray(body.data, dtype=np.float64)
    scores = np.zeros(X.shape[0])
    for j in range(X.shape[1]):  # HBOS-like: minus log density of each value's histogram bin
        counts, edges = np.histogram(X[:, j], bins=10)
        bins = np.clip(np.searchsorted(edges, X[:, j], side="right") - 1, 0, 9)
        scores -= np.log((counts[bins] + 1.0) / X.shape[0])
    return {"scores": scores.tolist()}


@app.get("/health/liveness")
def live() -> dict:
    return {"status": "ok"}
"""


def algos_wall(runs: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    cmd = [str(Path(sys.executable).with_name("adcore")), "algos"]
    if not Path(cmd[0]).exists():
        cmd = [sys.executable, "-m", "adcore.cli.main", "algos"]
    subprocess.run(cmd, check=True, env=env, capture_output=True)  # warm: bytecode, page cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(cmd, check=True, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
    listed = sum(1 for line in proc.stdout.splitlines() if ":" in line)
    median = statistics.median(times)
    return {
        "median_s": round(median, 4),
        "runs_s": [round(t, 4) for t in times],
        "lines": listed,
        "ok": median <= 0.5,
    }


def start_bare(workdir: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    (workdir / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(
        cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bare app exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            if httpx.get(url + "/health/liveness", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("bare app did not start within 60 s")


def cases(url: str, small: bytes, large: bytes, n_small: int, n_large: int) -> dict[str, Any]:
    run_case(url, "/v1/detect", small, 50, 20, 1)  # warm-up
    run_case(url, "/v1/detect", large, 50_000, 2, 1)
    return {
        "detect_50_rows_1_client": run_case(url, "/v1/detect", small, 50, n_small, 1),
        "detect_50000_rows_1_client": run_case(url, "/v1/detect", large, 50_000, n_large, 1),
        "detect_50_rows_8_clients": run_case(url, "/v1/detect", small, 50, n_small, 8),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=int, default=4)
    parser.add_argument("--small-requests", type=int, default=1000, help="requests per 50-row case")
    parser.add_argument("--large-requests", type=int, default=10, help="requests per 50,000-row case")
    parser.add_argument("--algos-runs", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="100 small, 3 large requests, 3 algos runs")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    n_small, n_large, algos_runs = (
        (100, 3, 3) if args.quick else (args.small_requests, args.large_requests, args.algos_runs)
    )
    load_before = load_average()

    algos = algos_wall(algos_runs)
    small = payload(50, args.features, 1)
    large = payload(50_000, args.features, 2)
    servers: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="adcore-perf-guard-") as tmp:
        for name, start in (
            ("bare FastAPI app", lambda d: start_bare(d)),
            ("adcore serve --workers 1", lambda d: start_server(d, 1)),
            ("adcore serve --workers 2", lambda d: start_server(d, 2)),
        ):
            workdir = Path(tmp) / name.replace(" ", "_")
            workdir.mkdir()
            process, url = start(workdir)
            try:
                servers[name] = cases(url, small, large, n_small, n_large)
            finally:
                stop_server(process)
            print(f"  measured {name}", file=sys.stderr, flush=True)

    bare, one, two = (
        servers[k] for k in ("bare FastAPI app", "adcore serve --workers 1", "adcore serve --workers 2")
    )
    p99_ratio = one["detect_50_rows_1_client"]["p99_ms"] / bare["detect_50_rows_1_client"]["p99_ms"]
    rows_ratio = (
        one["detect_50000_rows_1_client"]["rows_per_s"] / bare["detect_50000_rows_1_client"]["rows_per_s"]
    )
    workers_ratio = (
        two["detect_50_rows_8_clients"]["requests_per_s"] / one["detect_50_rows_8_clients"]["requests_per_s"]
    )
    checks = {
        "algos_s": algos["median_s"],
        "algos_ok": algos["ok"],
        "p99_50_rows_vs_bare": round(p99_ratio, 2),
        "p99_ok": p99_ratio <= 1.5,
        "rows_per_s_50000_vs_bare": round(rows_ratio, 2),
        "rows_ok": rows_ratio >= 1.0,
        "requests_per_s_8_clients_workers_2_vs_1": round(workers_ratio, 2),
        "workers_ok": workers_ratio > 1.0 or (os.cpu_count() or 1) < 2,
    }

    print(f"\nadcore algos (every plugin): median {algos['median_s']:.3f} s of {algos_runs} (goal <= 0.5 s)")
    header = f"{'server':<26} {'50 rows p50':>11} {'p99 ms':>7} {'50k rows/s':>11} {'8 clients req/s':>16}"
    print(header)
    print("-" * len(header))
    for name, c in servers.items():
        small_1, large_1, small_8 = (
            c["detect_50_rows_1_client"],
            c["detect_50000_rows_1_client"],
            c["detect_50_rows_8_clients"],
        )
        print(
            f"{name:<26} {small_1['p50_ms']:>11.2f} {small_1['p99_ms']:>7.2f} "
            f"{large_1['rows_per_s']:>11,} {small_8['requests_per_s']:>16.1f}"
        )
    print(
        f"\np99 at 50 rows: {p99_ratio:.2f}x the bare app's (goal <= 1.5x); rows/s at 50,000 rows: "
        f"{rows_ratio:.2f}x (goal >= 1x); 8 clients, 2 workers vs 1: {workers_ratio:.2f}x "
        f"(goal > 1x on {os.cpu_count()} cores)"
    )

    if args.json:
        result = {
            "benchmark": "perf_guard",
            "features": args.features,
            "requests": {"small": n_small, "large": n_large},
            "algos": algos,
            "servers": servers,
            "checks": checks,
            "machine": machine(load_before, repo=str(REPO)),
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
