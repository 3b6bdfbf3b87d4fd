"""What tracing costs a request: ``POST /v1/detect`` with tracing off and on, side by side.

``adcore serve --workers 1`` processes on loopback: one without OTEL variables (tracing off:
one shared no-op span), ``--control`` a second one (how far two identical servers differ: the
noise floor), one exporting every span over OTLP/HTTP (the SDK's batch processor, as in
production) to a receiver in its own process that accepts and discards them, and optionally
servers with smaller export batches (``--batch``) or the standard head sampler (``--sample``).
50 rows x 4 features per request, one client at a time, ``--rounds`` interleaved rounds of
``--requests`` requests against each server; p50 and p99 pooled over every request of a
server. Goal (issue 19): p99 with tracing on within 10% of off.

Usage::

    python benchmarks/tracing_overhead.py --control --sample 0.1 --sample 0.01 --json tracing_overhead.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_load import free_port, payload, run_case, start_server, stop_server

OTEL_VARS = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
)


class _Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that counts export requests and drops their spans."""

    exports = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).exports += 1
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _server(workdir: Path, settings: dict[str, str] | None) -> tuple[Any, str]:
    """Start ``adcore serve`` with these OTEL variables (None: tracing off, none set)."""
    saved = {k: os.environ.pop(k, None) for k in os.environ.copy() if k.startswith("OTEL_")}
    try:
        os.environ.update(settings or {})
        return start_server(workdir, 1)
    finally:
        for key in [k for k in os.environ if k.startswith("OTEL_")]:
            del os.environ[key]
        os.environ.update({k: v for k, v in saved.items() if v is not None})


def _cases(
    otlp: str, samples: list[float], batches: list[int], control: bool
) -> dict[str, dict[str, str] | None]:
    """Server name -> its OTEL variables; every traced server exports over OTLP/HTTP to ``otlp``."""
    export = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    }
    cases: dict[str, dict[str, str] | None] = {"off": None}
    if control:  # a second untraced server: how far two identical servers differ (the noise floor)
        cases["off, control"] = None
    cases["on"] = dict(export)
    for size in batches:  # the standard batch processor variable: smaller, shorter exports
        cases[f"on, batches of {size}"] = {**export, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": str(size)}
    for ratio in samples:  # the standard head sampler: a share of new traces, kept whole
        cases[f"on, {ratio:g} sampled"] = {
            **export,
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": str(ratio),
        }
    return cases


def _run_sink(port: int) -> None:
    """The OTLP receiver's own process (``--sink PORT``): prints the export count when stopped.

    Its own process, so that receiving and parsing the exports never holds the GIL of the
    client threads taking the measurements (the collector runs elsewhere in production too).
    """
    sink = ThreadingHTTPServer(("127.0.0.1", port), _Sink)

    def stop(*_: Any) -> None:
        threading.Thread(target=sink.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    sink.serve_forever()
    print(_Sink.exports, flush=True)


def _start_sink() -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--sink", str(port)], stdout=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process, port
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("the OTLP sink did not start")


def _stop_sink(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=30)
    return int(out.strip() or 0)


def _pooled(rounds: list[dict[str, Any]]) -> dict[str, float]:
    """p50 and p99 over every request of every round (steadier than a median of per-round p99s)."""
    ms = np.concatenate([np.asarray(r["latencies_ms"]) for r in rounds])
    return {
        "requests": int(ms.size),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "requests_per_s": round(statistics.median(r["requests_per_s"] for r in rounds), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per round and server")
    parser.add_argument("--rounds", type=int, default=10, help="short rounds interleave the servers finely")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument(
        "--sample",
        type=float,
        action="append",
        default=[],
        help="also run a server sampling this share of traces "
        "(OTEL_TRACES_SAMPLER=parentbased_traceidratio); repeatable",
    )
    parser.add_argument(
        "--batch",
        type=int,
        action="append",
        default=[],
        help="also run a server exporting every trace in batches of this many spans "
        "(OTEL_BSP_MAX_EXPORT_BATCH_SIZE); repeatable",
    )
    parser.add_argument(
        "--control", action="store_true", help="also run a second untraced server (noise floor)"
    )
    parser.add_argument("--sink", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink is not None:
        _run_sink(args.sink)
        return

    sink, sink_port = _start_sink()
    body = payload(50, 4, seed=0, algorithm="core:hbos")
    cases = _cases(f"http://127.0.0.1:{sink_port}", args.sample, args.batch, args.control)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in cases}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            servers = {name: _server(Path(tmp) / f"s{i}", env) for i, (name, env) in enumerate(cases.items())}
            try:
                for _, url in servers.values():  # warm every server: imports, first fit
                    run_case(url, "/v1/detect", body, 50, 50, 1)
                for _ in range(args.rounds):  # interleaved: a slow spell of the machine hits them all
                    for name, (_, url) in servers.items():
                        results[name].append(
                            run_case(url, "/v1/detect", body, 50, args.requests, 1, keep_latencies=True)
                        )
            finally:
                for process, _ in servers.values():
                    stop_server(process)
    finally:
        exports = _stop_sink(sink)

    summary = {name: _pooled(rounds) for name, rounds in results.items()}
    untraced = [r for name, rounds in results.items() if cases[name] is None for r in rounds]
    if len(untraced) > len(results["off"]):  # with --control: both identical servers are the baseline
        summary = {"untraced (both pooled)": _pooled(untraced), **summary}
    off = next(iter(summary.values()))["p99_ms"]
    ratios = {name: round(row["p99_ms"] / off, 4) for name, row in summary.items()}
    print(f"POST /v1/detect, 50 rows x 4, {args.requests} requests x {args.rounds} rounds (pooled)")
    print(f"{'tracing':28}{'p50 ms':>10}{'p99 ms':>10}{'req/s':>10}{'p99 x untraced':>16}")
    for name, row in summary.items():
        print(
            f"{name:28}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}{row['requests_per_s']:>10.1f}"
            f"{ratios[name]:>16.3f}"
        )
    print(f"p99 on / untraced: {ratios['on']:.3f} (goal <= 1.10); OTLP export requests received: {exports}")
    if args.json:
        for rounds in results.values():
            for r in rounds:
                r.pop("latencies_ms")
        args.json.write_text(
            json.dumps(
                {
                    "benchmark": "tracing_overhead",
                    "requests": args.requests,
                    "rounds": args.rounds,
                    "summary": summary,
                    "rounds_detail": results,
                    "p99_ratio": ratios["on"],
                    "p99_ratios": ratios,
                    "exports_received": exports,
                    "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                },
                indent=2,
            )
        )
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
