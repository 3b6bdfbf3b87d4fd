"""HTTP metrics and the ``/metrics`` registry.

Requests are counted by method, route *template* (``/v1/models/{ref}/score``, never the
raw path) and status. Every label comes from a fixed set, so no client can grow the
registry: a method outside :data:`KNOWN_METHODS` is ``other``, a path no route matches is
``<unmatched>`` (statuses are the app's own). Latency is a histogram per route. The
scoring, model-load and drift metrics come from the ``prometheus`` monitor
(:mod:`adcore.builtin.prometheus_monitor`) built on the same registry, so the server and
``adcore stream`` publish the same metric names.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from adcore.builtin.prometheus_monitor import PrometheusMonitor

UNMATCHED = "<unmatched>"
OTHER = "other"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str | None) -> str:
    """The request's method if it is a standard one, else ``other`` (a client can invent methods)."""
    return method if method in KNOWN_METHODS else OTHER


def route_label(scope: dict[str, Any]) -> str:
    """The matched route's template, else ``<unmatched>`` (never the raw path)."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class ServerMetrics:
    """One registry per app: HTTP metrics here, domain metrics in :attr:`domain`."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "adcore_http_requests_total",
            "HTTP requests, by route and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "adcore_http_request_duration_seconds",
            "HTTP request latency, by route.",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )
        self.in_flight = Gauge("adcore_http_requests_in_flight", "Requests being served.", registry=r)
        self.domain = PrometheusMonitor(self.registry)
        self.registry.register(DependencyCollector())

    def watch_jobs(self, jobs: Any) -> None:
        """Expose ``jobs``' queue depths, outcomes and durations (read at each scrape)."""
        self.registry.register(JobsCollector(jobs))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class JobsCollector:
    """``adcore_jobs_*``, read from the job queue at scrape time.

    With Redis the figures are every worker's (they count into Redis), so any API instance
    reports the same totals; with the embedded pool, this process's.
    """

    def __init__(self, jobs: Any) -> None:
        self.jobs = jobs

    def describe(self) -> list[Any]:
        return []  # collected lazily: a scrape must not fail because Redis is briefly away at start-up

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        from adcore.services.jobs.execution import DURATION_BUCKETS

        try:
            depths = self.jobs.depths()
            stats = self.jobs.stats()
        except Exception:  # Redis away: the other metrics still answer
            return
        depth = GaugeMetricFamily(
            "adcore_jobs_queued", "Jobs waiting for a worker, by priority.", labels=["priority"]
        )
        for priority, n in depths.items():
            depth.add_metric([priority], n)
        yield depth
        outcomes = CounterMetricFamily(
            "adcore_jobs_completed", "Jobs that ended, by kind and status.", labels=["kind", "status"]
        )
        for (kind, status), n in sorted(stats["outcomes"].items()):
            outcomes.add_metric([kind, status], n)
        yield outcomes
        durations = HistogramMetricFamily(
            "adcore_jobs_duration_seconds", "Time a job ran on its worker, by kind.", labels=["kind"]
        )
        for kind, row in sorted(stats["durations"].items()):
            buckets = [(str(b), row[i]) for i, b in enumerate(DURATION_BUCKETS)] + [("+Inf", row[-1])]
            durations.add_metric([kind], buckets, row[-2])
        yield durations


class DependencyCollector:
    """``adcore_dependency_*`` and ``adcore_circuit_breaker_*``: the services this process calls.

    Read at scrape time from :mod:`adcore.services.resilience` (process-wide counts, one
    series per service kind and target). The breaker state is an enum gauge, one series
    per state with 1 on the current one, as kube-state-metrics spells states.
    """

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from adcore.services import resilience

        labels = ["dependency", "target"]
        state = GaugeMetricFamily(
            "adcore_circuit_breaker_state",
            "Circuit breaker state per service (1 on the current state).",
            labels=[*labels, "state"],
        )
        counters = {
            field: CounterMetricFamily(f"adcore_dependency_{field}", help_text, labels=labels)
            for field, help_text in (
                ("calls", "Calls to the service (each with its retries)."),
                ("retries", "Attempts repeated after a transient failure."),
                ("failures", "Calls that failed after their retries (or one attempt)."),
                ("rejected", "Calls refused at once by an open circuit breaker."),
            )
        }
        opened = CounterMetricFamily(
            "adcore_circuit_breaker_opened", "Times the breaker opened.", labels=labels
        )
        for dependency in resilience.dependencies():
            where = [dependency.kind, dependency.target]
            current = dependency.state
            for name in (resilience.CLOSED, resilience.OPEN, resilience.HALF_OPEN):
                state.add_metric([*where, name], 1.0 if name == current else 0.0)
            for field, family in counters.items():
                family.add_metric(where, getattr(dependency.stats, field))
            opened.add_metric(where, dependency.stats.opened)
        yield state
        yield from counters.values()
        yield opened


class RequestMetricsMiddleware:
    """ASGI middleware timing every HTTP request and counting it by route template and status."""

    def __init__(self, app: Any, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_watch(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.observe(
                method_label(scope.get("method")), route_label(scope), status, time.perf_counter() - started
            )
