"""Asynchronous jobs on Redis: small jobs per second with 1 and 2 workers, and POST-to-finished
time for one large score job.

Starts ``redis-server`` (persistence off) and the real ``adcore serve --queue`` on free
loopback ports, and ``adcore worker`` processes (``--queues high,normal,low``), each with its
own temporary store and job root. Then:

- ``small``: ``--small-jobs`` ``detect`` jobs of 50 rows x 4 features posted at once, timed
  from the first POST until every one is finished (polling ``GET /v1/jobs/ID``), with 1 and
  with 2 workers: jobs per second, which is mostly the queue's and the fork-per-job
  overhead;
- ``large``: one ``score`` job over a ``--large-rows``-row CSV (4 features) with a stored
  ``core:hbos`` model, timed from the POST until ``GET`` says finished: seconds, and rows/s.

Prints a table and writes JSON (``--output``). Clients, Redis, the server and the workers
share the machine: read the figures as a floor.

Usage::

    python benchmarks/jobs_bench.py --output jobs_bench.json
    python benchmarks/jobs_bench.py --small-jobs 50 --large-rows 20000     # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group (a worker's work horses included), SIGKILL after 10 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def env_for(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    env.update(
        ADCORE_HOME=str(workdir),
        ADCORE_STORE=str(workdir / "models"),
        ADCORE_JOB_ROOTS=str(workdir),
        ADCORE_DISABLE_PLUGIN_AUTOLOAD="1",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    )
    return env


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "adcore.cli.main", *args],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip


def wait_all(client: Any, ids: list[str], timeout: float) -> list[dict[str, Any]]:
    pending, done = set(ids), {}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for job_id in list(pending):
            body = client.get(f"/v1/jobs/{job_id}").json()
            if body["status"] in ("finished", "failed", "canceled"):
                done[job_id] = body
                pending.discard(job_id)
        if pending:
            time.sleep(0.01)
    if pending:
        raise RuntimeError(f"{len(pending)} jobs not finished within {timeout} s")
    failed = [b for b in done.values() if b["status"] != "finished"]
    if failed:
        raise RuntimeError(f"{len(failed)} jobs failed, e.g. {failed[0]['error']}")
    return [done[i] for i in ids]


def small_case(client: Any, n_jobs: int, rng: np.random.Generator) -> dict[str, Any]:
    rows = np.round(rng.normal(size=(50, 4)), 6).tolist()
    started = time.perf_counter()
    ids = [client.post("/v1/jobs", json={"kind": "detect", "data": rows, "seed": 0}).json()["id"]
           for _ in range(n_jobs)]  # fmt: skip
    wait_all(client, ids, timeout=600)
    seconds = time.perf_counter() - started
    return {"jobs": n_jobs, "seconds": round(seconds, 3), "jobs_per_second": round(n_jobs / seconds, 1)}


def large_case(client: Any, workdir: Path, model: str, data: Path, n_rows: int) -> dict[str, Any]:
    body = {"kind": "score", "model": model, "input": str(data), "output": str(workdir / "large-out.csv"),
            "priority": "high"}  # fmt: skip
    started = time.perf_counter()
    job = client.post("/v1/jobs", json=body).json()["id"]
    (done,) = wait_all(client, [job], timeout=1800)
    seconds = time.perf_counter() - started
    return {
        "rows": n_rows,
        "post_to_finished_seconds": round(seconds, 3),
        "worker_seconds": done["result"].get("seconds"),
        "rows_per_second": round(n_rows / seconds),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-jobs", type=int, default=500)
    parser.add_argument("--large-rows", type=int, default=1_000_000)
    parser.add_argument("--output", default="jobs_bench.json")
    args = parser.parse_args(argv)

    import httpx

    import adcore

    redis_bin = shutil.which("redis-server")
    if redis_bin is None:
        print("redis-server is not installed (apt-get install -y redis-server)", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="adcore-jobs-bench-") as tmp:
        workdir = Path(tmp).resolve()
        env = env_for(workdir)
        try:
            redis_port, api_port = free_port(), free_port()
            with open(workdir / "redis.log", "ab") as log:
                procs.append(subprocess.Popen(
                    [redis_bin, "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "",
                     "--appendonly", "no"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                ))  # fmt: skip
            wait_port(redis_port)
            url = f"redis://127.0.0.1:{redis_port}/0"
            train = rng.normal(size=(5000, 4))
            adcore.fit(train, algo="core:hbos", name="bench", store=str(workdir / "models"), seed=0)
            data = workdir / "large.csv"
            X = rng.normal(size=(args.large_rows, 4))
            np.savetxt(data, X, delimiter=",", header="x0,x1,x2,x3", comments="", fmt="%.6f")
            procs.append(spawn(["serve", "--port", str(api_port), "--queue", url, "--rate-limit", "0",
                                "--log-level", "warning"], env, workdir / "server.log"))  # fmt: skip
            wait_port(api_port)
            workers: list[subprocess.Popen] = []
            results: dict[str, Any] = {"small": {}, "large": None}
            with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=60) as client:
                for n_workers in (1, 2):
                    while len(workers) < n_workers:
                        worker = spawn(["worker", "--queue", url, "--queues", "high,normal,low"], env,
                                       workdir / f"worker-{len(workers)}.log")  # fmt: skip
                        workers.append(worker)
                        procs.append(worker)
                    time.sleep(1.0)  # let the workers register before timing
                    results["small"][str(n_workers)] = small_case(client, args.small_jobs, rng)
                results["large"] = large_case(client, workdir, "bench@1", data, args.large_rows)
        finally:
            for proc in reversed(procs):
                stop(proc)
    report = {
        "benchmark": "jobs_bench",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "small_job": "detect, 50 rows x 4 features, core:hbos",
        "results": results,
    }
    print(f"{'case':<32} {'value':>14}")
    for n, row in results["small"].items():
        print(f"{f'small jobs/s, {n} worker(s)':<32} {row['jobs_per_second']:>14}")
    large = results["large"]
    label = f"score {large['rows']:,} rows: POST->finished s"
    print(f"{label:<32} {large['post_to_finished_seconds']:>14}")
    print(f"{'  of which on the worker, s':<32} {large['worker_seconds']:>14}")
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
