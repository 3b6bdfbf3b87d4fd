"""What tracing costs a request: ``POST /v1/detect`` with tracing off and on, side by side.

Two ``adcore serve --workers 1`` processes on loopback, one without OTEL variables (tracing
off: one shared no-op span) and one exporting every span over OTLP/HTTP to a receiver in
this process that accepts and discards them (the SDK's batch processor, as in production).
50 rows x 4 features per request, one client at a time, ``--rounds`` interleaved rounds of
``--requests`` requests against each server; figures are the medians over rounds. Goal
(issue 19): p99 with tracing on within 10% of off.

Usage::

    python benchmarks/tracing_overhead.py --json tracing_overhead.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

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


def _server(workdir: Path, otlp: str | None, sample: float | None = None) -> tuple[Any, str]:
    saved = {k: os.environ.pop(k, None) for k in OTEL_VARS}
    try:
        if otlp is not None:
            os.environ.update(
                OTEL_TRACES_EXPORTER="otlp",
                OTEL_EXPORTER_OTLP_ENDPOINT=otlp,
                OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            )
            if sample is not None:  # the standard head sampler: a share of new traces, kept whole
                os.environ["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
                os.environ["OTEL_TRACES_SAMPLER_ARG"] = str(sample)
        return start_server(workdir, 1)
    finally:
        for key in OTEL_VARS:
            os.environ.pop(key, None)
            if saved[key] is not None:
                os.environ[key] = saved[key]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per round and server")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument(
        "--sample",
        type=float,
        action="append",
        default=[],
        help="also run a server sampling this share of traces "
        "(OTEL_TRACES_SAMPLER=parentbased_traceidratio); repeatable",
    )
    args = parser.parse_args()

    sink = ThreadingHTTPServer(("127.0.0.1", free_port()), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    body = payload(50, 4, seed=0, algorithm="core:hbos")
    otlp = f"http://127.0.0.1:{sink.server_address[1]}"
    names = ["off", "on", *(f"on, {ratio:g} sampled" for ratio in args.sample)]
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        servers = {
            "off": _server(Path(tmp) / "off", None),
            "on": _server(Path(tmp) / "on", otlp),
        }
        for i, ratio in enumerate(args.sample):
            servers[names[2 + i]] = _server(Path(tmp) / f"s{i}", otlp, ratio)
        try:
            for _, url in servers.values():  # warm both: imports, first fit
                run_case(url, "/v1/detect", body, 50, 50, 1)
            for _ in range(args.rounds):
                for name, (_, url) in servers.items():
                    results[name].append(run_case(url, "/v1/detect", body, 50, args.requests, 1))
        finally:
            for process, _ in servers.values():
                stop_server(process)
    sink.shutdown()

    summary = {
        name: {k: statistics.median(r[k] for r in rounds) for k in ("p50_ms", "p99_ms", "requests_per_s")}
        for name, rounds in results.items()
    }
    ratio = summary["on"]["p99_ms"] / summary["off"]["p99_ms"]
    ratios = {name: round(row["p99_ms"] / summary["off"]["p99_ms"], 4) for name, row in summary.items()}
    print(f"POST /v1/detect, 50 rows x 4, {args.requests} requests x {args.rounds} rounds (medians)")
    print(f"{'tracing':22}{'p50 ms':>10}{'p99 ms':>10}{'req/s':>10}{'p99 x off':>11}")
    for name, row in summary.items():
        print(
            f"{name:22}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}{row['requests_per_s']:>10.1f}"
            f"{ratios[name]:>11.3f}"
        )
    print(f"p99 on/off: {ratio:.3f} (goal <= 1.10); OTLP export requests received: {_Sink.exports}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "benchmark": "tracing_overhead",
                    "requests": args.requests,
                    "rounds": args.rounds,
                    "summary": summary,
                    "rounds_detail": results,
                    "p99_ratio": round(ratio, 4),
                    "p99_ratios": ratios,
                    "exports_received": _Sink.exports,
                    "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                },
                indent=2,
            )
        )
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
