"""What one app instance holds, and the bookkeeping every scoring call shares.

Routes reach it as ``request.app.state.adcore``. After a detection or scoring call,
:meth:`ServerState.record_scoring` updates the dashboard ring, the Prometheus counters
(labelled by algorithm), the model's drift detector, and publishes ``detection.completed``,
``anomaly.detected`` and ``drift.detected`` events; after a fit, :meth:`ServerState.record_fit`
publishes ``model.saved``. Routes call both once the response body is built. The events go
through the event bus a stream uses, to the monitors chosen with ``--monitor`` and the
plugins' ``register_event_subscribers`` subscribers, delivered off the request path
(:mod:`adcore.server.publisher`). Events from the server carry ``stream="serve:<model or
detect>"`` (``serve:fit`` for fits), so a sink that also receives ``adcore stream`` events can
tell them apart.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from adcore.server.activity import Activity
from adcore.server.drift_watch import DriftWatch
from adcore.server.limits import TokenBucketLimiter
from adcore.server.metrics import ServerMetrics
from adcore.server.model_cache import ModelCache
from adcore.server.publisher import EventPublisher
from adcore.server.settings import ServerSettings
from adcore.server.stores import ThreadStores

T = TypeVar("T")


@dataclass
class ServerState:
    settings: ServerSettings
    metrics: ServerMetrics
    activity: Activity
    models: ModelCache
    drift: DriftWatch
    rate_limiter: TokenBucketLimiter
    stores: ThreadStores
    events: EventPublisher
    host: Any = None
    jobs: Any = None  # adcore.services.jobs.queue.JobQueue: Redis (--queue) or the in-process pool
    _cpu_limiter: Any = None
    _algorithms: list[dict[str, Any]] | None = field(default=None)

    @classmethod
    def create(cls, settings: ServerSettings, host: Any = None) -> ServerState:
        from adcore.domain.events import EventBus
        from adcore.services.events import load_monitors, load_subscribers

        metrics = ServerMetrics()
        names = [m for m in settings.monitors if m.split(":")[-1] != "prometheus"]  # built in: /metrics
        bus = EventBus(
            monitors=load_monitors(names, host=host),
            subscribers=load_subscribers(host=host, on_error=_log_listener_error),
            on_error=_log_listener_error,
        )
        events = EventPublisher(bus)
        state = cls(
            settings=settings,
            metrics=metrics,
            activity=Activity(settings.recent),
            models=ModelCache(
                settings.model_cache, on_load=lambda m: metrics.domain.model_loaded(m.algorithm)
            ),
            drift=DriftWatch(
                window=settings.drift_window, alpha=settings.drift_alpha, max_models=settings.model_cache
            ),
            rate_limiter=TokenBucketLimiter(settings.rate_limit, settings.rate_burst),
            stores=ThreadStores(settings.store),
            events=events,
            host=host,
        )
        state.jobs = _job_queue(settings, events)
        metrics.watch_jobs(state.jobs)
        return state

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking ``fn`` in a worker thread, at most ``concurrency`` at a time.

        Fitting and scoring hold the CPU for up to seconds; on the event loop they would
        stall every other request, health checks included.
        """
        import anyio

        if self._cpu_limiter is None:  # created on the loop, on first use
            self._cpu_limiter = anyio.CapacityLimiter(self.settings.concurrency)
        return await anyio.to_thread.run_sync(
            functools.partial(fn, *args, **kwargs), limiter=self._cpu_limiter
        )

    def algorithms(self) -> list[dict[str, Any]]:
        """Every algorithm with its parameter schema, described once (plugins don't change while serving)."""
        if self._algorithms is None:
            from adcore.services.catalog import describe_algorithm, list_algorithms

            rows = []
            for row in list_algorithms():
                try:
                    info = describe_algorithm(row["name"])
                    row = {**row, "parameters": info["parameters"], "schema": info["schema"]}
                except Exception as exc:  # a plugin's missing package must not hide the others
                    row = {**row, "error": f"{type(exc).__name__}: {exc}"}
                rows.append(row)
            self._algorithms = rows
        return self._algorithms

    def record_scoring(self, result: Any, *, kind: str, model: Any = None, duration_ms: float) -> None:
        """Bookkeeping after one detect/score call (in the worker thread, after the body is built)."""
        from adcore.domain.events import utc_timestamp

        ref = model.ref if model is not None else None
        stream = f"serve:{ref or kind}"
        now = utc_timestamp()
        self.activity.add_detection(result, kind=kind, model=ref, duration_ms=duration_ms, time=now)
        self.metrics.domain.scored(
            result.algorithm, result.n_samples, result.n_anomalies, duration_ms / 1000.0
        )
        events = _scoring_events(self.events, result, stream=stream, model=ref, duration_ms=duration_ms)
        if model is not None and ref is not None:
            for event in self._drift_events(model, result, stream):
                self.activity.add_drift({**event.to_dict(), "model": ref, "algorithm": result.algorithm})
                self.metrics.domain.drifted(result.algorithm, event.detector, "scores")
                events.append(event)
        self.events.publish(events)

    def record_fit(self, record: Any) -> None:
        """Publish ``model.saved`` for a model version a request fitted and stored."""
        from adcore.domain.events import ModelSaved

        if self.events.wants(ModelSaved.type):
            self.events.publish([ModelSaved.from_record(record, stream="serve:fit")])

    def _drift_events(self, model: Any, result: Any, stream: str) -> list[Any]:
        from adcore.domain.events import DriftDetected

        return [
            DriftDetected(
                stream=stream,
                detector=signal.detector,
                on="scores",
                offset=int(signal.index),
                statistic=_number(signal.statistic),
                threshold=_number(signal.threshold),
                p_value=_number(signal.p_value),
                feature=signal.feature,
                action="none",
            )
            for signal in self.drift.update(model.ref, model.detector.decision_scores_, result.scores)
        ]

    def close(self) -> None:
        if self.jobs is not None:
            self.jobs.close()
        self.events.close()


def _scoring_events(
    events: EventPublisher, result: Any, *, stream: str, model: str | None, duration_ms: float
) -> list[Any]:
    """``detection.completed`` and one ``anomaly.detected`` per anomalous row, if anyone listens.

    Rows count from 0 in the request's order (``offset``; ``line_number`` is ``offset + 1``).
    """
    import numpy as np

    from adcore.domain.events import AnomalyDetected, DetectionCompleted

    out: list[Any] = []
    threshold = float(result.threshold)
    if result.n_anomalies and events.wants(AnomalyDetected.type):
        scores = np.asarray(result.scores, dtype=np.float64)
        for row in np.flatnonzero(np.asarray(result.labels) == 1).tolist():
            out.append(
                AnomalyDetected(
                    stream=stream,
                    offset=row,
                    line_number=row + 1,
                    score=float(scores[row]),
                    threshold=threshold,
                    model=model,
                )
            )
    if events.wants(DetectionCompleted.type):
        out.append(
            DetectionCompleted(
                stream=stream,
                records=result.n_samples,
                scored=result.n_samples,
                warmup=0,
                anomalies=result.n_anomalies,
                malformed=0,
                first_offset=0,
                last_offset=result.n_samples - 1,
                model=model,
                threshold=threshold,
                duration_ms=round(duration_ms, 3),
            )
        )
    return out


def _job_queue(settings: ServerSettings, events: EventPublisher) -> Any:
    """RQ on ``settings.queue``, else the in-process pool (whose job events go to the server's bus)."""
    from adcore.services.jobs.queue import open_queue

    if settings.queue:
        return open_queue(settings.queue)
    return open_queue(
        None,
        workers=settings.job_workers,
        max_queued=settings.max_queued_jobs,
        store=settings.store,
        publish=events.publish,
    )


def _number(value: Any) -> float | None:
    """A plain float for an event, ``None`` for a missing or non-finite one (JSON has no NaN)."""
    from adcore.io.jsonio import finite_or_none

    return finite_or_none(value)


def _log_listener_error(message: str) -> None:
    """A monitor or subscriber that failed (the bus reports each once), or a subscriber left out."""
    import logging

    logging.getLogger("adcore.server").warning(message)
