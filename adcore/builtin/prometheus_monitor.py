"""The ``prometheus`` monitor: events and scoring counts as Prometheus metrics.

Used two ways. ``adcore serve`` builds one on its app's registry and exposes it at
``/metrics`` (calling :meth:`PrometheusMonitor.scored` and :meth:`model_loaded` directly,
since it knows each call's algorithm). ``adcore stream --monitor prometheus`` builds one
from the registry (``factory()``, no options) and feeds it events; a stream is a batch
job, so the metrics are exposed the way batch jobs expose them: an HTTP listener when
``ADCORE_PROMETHEUS_PORT`` is set (on ``ADCORE_PROMETHEUS_ADDR``, default 127.0.0.1),
and/or a node-exporter textfile at ``ADCORE_PROMETHEUS_TEXTFILE``, rewritten on flush.

Each instance owns a fresh ``CollectorRegistry`` unless given one, so two monitors in
one process (tests, a server and a stream) never collide on metric names.

Events carry no algorithm except ``model.retrained``; the monitor remembers each
stream's algorithm from it (a stream's first refit precedes its first scored batch), so
rows, anomalies and drift are labelled by algorithm as well.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

PORT_ENV = "ADCORE_PROMETHEUS_PORT"
ADDR_ENV = "ADCORE_PROMETHEUS_ADDR"
TEXTFILE_ENV = "ADCORE_PROMETHEUS_TEXTFILE"
_MAX_STREAMS = 1024
UNKNOWN = "unknown"


class PrometheusMonitor:
    """Counters and histograms for scoring, models and drift, labelled by algorithm."""

    def __init__(
        self,
        registry: Any = None,
        *,
        port: int | None = None,
        addr: str | None = None,
        textfile: str | None = None,
    ) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = registry if registry is not None else CollectorRegistry()
        self.textfile = textfile if textfile is not None else os.environ.get(TEXTFILE_ENV) or None
        r = self.registry
        self.events = Counter("adcore_events_total", "Events recorded, by type.", ["type"], registry=r)
        self.rows = Counter("adcore_rows_scored_total", "Rows scored.", ["algorithm"], registry=r)
        self.anomalies = Counter(
            "adcore_anomalies_total", "Rows labelled anomalous.", ["algorithm"], registry=r
        )
        self.batch_seconds = Histogram(
            "adcore_scoring_seconds",
            "Time to score one request or micro-batch.",
            ["algorithm"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )
        self.model_loads = Counter(
            "adcore_model_loads_total", "Models loaded from the model store.", ["algorithm"], registry=r
        )
        self.drift = Counter(
            "adcore_drift_events_total", "Drift detections.", ["algorithm", "detector", "on"], registry=r
        )
        self.retrains = Counter(
            "adcore_model_retrains_total", "Model (re)fits in streams.", ["algorithm", "reason"], registry=r
        )
        self._stream_algorithms: OrderedDict[str, str] = OrderedDict()
        port = port if port is not None else _int_env(PORT_ENV)
        if port is not None:
            from prometheus_client import start_http_server

            start_http_server(port, addr=addr or os.environ.get(ADDR_ENV) or "127.0.0.1", registry=r)

    # ------------------------------------------------------------ direct calls
    def scored(self, algorithm: str, rows: int, anomalies: int, seconds: float | None = None) -> None:
        """Count one scoring call (the server knows its algorithm, so it calls this directly)."""
        self.rows.labels(algorithm).inc(rows)
        self.anomalies.labels(algorithm).inc(anomalies)
        if seconds is not None:
            self.batch_seconds.labels(algorithm).observe(seconds)

    def model_loaded(self, algorithm: str) -> None:
        self.model_loads.labels(algorithm).inc()

    def drifted(self, algorithm: str, detector: str, on: str) -> None:
        self.drift.labels(algorithm, detector, on).inc()

    # ------------------------------------------------------------ the monitor port
    def record(self, event: Any) -> None:
        """Update the metrics from one ``adcore.domain.events`` event."""
        kind = getattr(event, "type", None) or UNKNOWN
        self.events.labels(kind).inc()
        algorithm = getattr(event, "algorithm", None) or self._algorithm_of(event)
        if kind == "model.retrained":
            self._remember(event, algorithm)
            self.retrains.labels(algorithm, str(getattr(event, "reason", UNKNOWN))).inc()
        elif kind == "detection.completed":
            duration = getattr(event, "duration_ms", None)
            self.scored(
                algorithm,
                int(getattr(event, "scored", 0) or 0),
                int(getattr(event, "anomalies", 0) or 0),
                None if duration is None else float(duration) / 1000.0,
            )
        elif kind == "drift.detected":
            detector, on = getattr(event, "detector", UNKNOWN), getattr(event, "on", UNKNOWN)
            self.drifted(algorithm, str(detector), str(on))

    def _algorithm_of(self, event: Any) -> str:
        stream = getattr(event, "stream", None)
        return self._stream_algorithms.get(stream, UNKNOWN) if stream is not None else UNKNOWN

    def _remember(self, event: Any, algorithm: str) -> None:
        stream = getattr(event, "stream", None)
        if stream is None or algorithm == UNKNOWN:
            return
        self._stream_algorithms[stream] = algorithm
        self._stream_algorithms.move_to_end(stream)
        while len(self._stream_algorithms) > _MAX_STREAMS:
            self._stream_algorithms.popitem(last=False)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    def flush(self) -> None:
        """Rewrite the textfile, if one is configured (atomically: node-exporter may read it any time)."""
        if self.textfile:
            from prometheus_client import write_to_textfile

            write_to_textfile(self.textfile, self.registry)

    def close(self) -> None:
        self.flush()


def _int_env(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        from adcore.errors import ParameterError

        raise ParameterError(f"{name} must be a port number, got {raw!r}") from None
