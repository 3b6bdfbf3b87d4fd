"""Load test of ``adcore serve`` on loopback: latency percentiles and throughput.

Starts the real server (``python -m adcore.cli.main serve``, uvicorn) in a subprocess on
a free 127.0.0.1 port, with its own temporary store and no rate limit, fits one stored
model, then for each case sends a fixed number of requests from a pool of client threads
(one keep-alive ``httpx.Client`` each) and reports p50/p99 latency, requests/s and rows/s:

- ``detect``: ``POST /v1/detect`` (fit ``core:hbos`` on the rows and score them);
- ``score``: ``POST /v1/models/bench/score`` (a stored ``core:hbos`` model, no refit);

each with a 50-row and a 50,000-row payload of ``--features`` N(0, 1) features (6 decimals;
50,000 x 4 is a 2.2 MB body). Every response is checked (status 200, one score per row).
Clients run on the same machine as the server, so on a small machine they compete with
it for the CPU: read the figures as a floor.

Usage::

    python benchmarks/server_load.py --output server_load.json
    python benchmarks/server_load.py --workers 2 --small-requests 1000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(workdir: Path, workers: int) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    env.update(ADCORE_HOME=str(workdir), ADCORE_DISABLE_PLUGIN_AUTOLOAD="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    command = [
        sys.executable,
        "-m",
        "adcore.cli.main",
        "serve",
        "--port",
        str(port),
        "--store",
        str(workdir / "models"),
        "--rate-limit",
        "0",
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            if httpx.get(url + "/health/liveness", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server did not start within 60 s")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def payload(rows: int, features: int, seed: int, **extra: Any) -> bytes:
    X = np.round(np.random.default_rng(seed).normal(size=(rows, features)), 6)
    return json.dumps({"data": X.tolist(), **extra}).encode()


def run_case(
    url: str, path: str, body: bytes, rows: int, requests: int, clients: int, *, keep_latencies: bool = False
) -> dict[str, Any]:
    """``requests`` POSTs of ``body`` from ``clients`` threads; latency of each, wall time of all.

    ``keep_latencies`` adds every request's latency (``latencies_ms``), to pool over rounds.
    """
    import httpx

    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def client_loop(_: int) -> None:
        headers = {"content-type": "application/json"}
        with httpx.Client(base_url=url, timeout=300, headers=headers) as client:
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                started = time.perf_counter()
                response = client.post(path, content=body)
                elapsed = time.perf_counter() - started
                if response.status_code != 200 or len(response.json()["scores"]) != rows:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
                with lock:
                    latencies.append(elapsed)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(client_loop, range(clients)))
    wall = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000.0
    kept = {"latencies_ms": ms.round(4).tolist()} if keep_latencies else {}
    return kept | {
        "requests": len(latencies),
        "clients": clients,
        "body_mb": round(len(body) / 1e6, 3),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "mean_ms": round(float(ms.mean()), 2),
        "requests_per_s": round(len(latencies) / wall, 2),
        "rows_per_s": round(len(latencies) * rows / wall),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=4)
    parser.add_argument("--small-requests", type=int, default=400, help="requests per 50-row case")
    parser.add_argument("--large-requests", type=int, default=20, help="requests per 50,000-row case")
    parser.add_argument("--clients", type=int, default=8, help="client threads for the 50-row cases")
    parser.add_argument(
        "--large-clients", type=int, default=2, help="client threads for the 50,000-row cases"
    )
    parser.add_argument("--workers", type=int, default=1, help="adcore serve --workers")
    parser.add_argument("--output", type=Path, default=Path("server_load.json"), help="JSON results")
    args = parser.parse_args()

    import httpx

    with tempfile.TemporaryDirectory(prefix="adcore-load-") as tmp:
        process, url = start_server(Path(tmp), args.workers)
        try:
            train = payload(2_000, args.features, 0, name="bench", algorithm="core:hbos")
            httpx.post(
                url + "/v1/models", content=train, headers={"content-type": "application/json"}, timeout=120
            ).raise_for_status()
            cases = []
            for rows, requests, clients in (
                (50, args.small_requests, args.clients),
                (50_000, args.large_requests, args.large_clients),
            ):
                body = payload(rows, args.features, 1)
                for name, path in (("detect", "/v1/detect"), ("score", "/v1/models/bench/score")):
                    run_case(url, path, body, rows, max(2, clients), clients)  # warm-up
                    result = {
                        "case": name,
                        "rows": rows,
                        **run_case(url, path, body, rows, requests, clients),
                    }
                    cases.append(result)
                    print(json.dumps(result), file=sys.stderr)
        finally:
            stop_server(process)

    columns = ("rows", "clients", "body MB", "p50 ms", "p99 ms", "req/s", "rows/s")
    print(f"{'case':<8} " + " ".join(f"{c:>9}" for c in columns))
    for c in cases:
        print(
            f"{c['case']:<8} {c['rows']:>7,} {c['clients']:>7} {c['body_mb']:>8} {c['p50_ms']:>9} "
            f"{c['p99_ms']:>9} {c['requests_per_s']:>8} {c['rows_per_s']:>11,}"
        )
    result = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "settings": {"features": args.features, "workers": args.workers},
        "cases": cases,
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
