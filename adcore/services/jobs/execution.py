"""One job run with its bookkeeping, the same for RQ workers and the embedded pool.

Times the run, turns an exception into the stored one-line typed error (the line the CLI
prints: :func:`~adcore.services.jobs.model.error_of`), counts the outcome in :class:`JobStats`
and publishes ``job.started`` then ``job.finished`` or ``job.failed``. A user error is an
outcome, not a crash: the job is ``failed`` with its message and is never retried; only a
dead worker makes a job run again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adcore.errors import AdcoreError
from adcore.services.jobs.model import error_of

log = logging.getLogger("adcore.jobs")

#: job duration histogram buckets, seconds
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


@dataclass
class Outcome:
    """How one run ended: ``finished`` with ``result``, or ``failed`` with ``error``."""

    status: str
    seconds: float
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None


@dataclass
class JobStats:
    """Outcome counts per (kind, status) and a duration histogram per kind (for /metrics)."""

    outcomes: dict[tuple[str, str], int] = field(default_factory=dict)
    durations: dict[str, list[float]] = field(default_factory=dict)  # per kind: bucket counts..., sum, count
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, kind: str, status: str, seconds: float) -> None:
        with self._lock:
            self.outcomes[(kind, status)] = self.outcomes.get((kind, status), 0) + 1
            row = self.durations.setdefault(kind, [0.0] * (len(DURATION_BUCKETS) + 2))
            for i, bound in enumerate(DURATION_BUCKETS):
                if seconds <= bound:
                    row[i] += 1
            row[-2] += seconds
            row[-1] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            durations = {k: list(v) for k, v in self.durations.items()}
            return {"outcomes": dict(self.outcomes), "durations": durations}


Publish = Callable[[Sequence[Any]], None]


def execute(
    job_id: str,
    request: Mapping[str, Any],
    *,
    worker: str,
    attempt: int = 1,
    executor: str | None = None,
    store: str | None = None,
    publish: Publish | None = None,
    on_outcome: Callable[[str, str, float], None] | None = None,
) -> Outcome:
    """Run ``request`` as job ``job_id``; never raises for a failed job (see the module docstring)."""
    from adcore.domain.events import JobFailed, JobFinished, JobStarted
    from adcore.services.jobs.runner import run_job

    kind, priority = str(request.get("kind")), str(request.get("priority", "normal"))
    common = {"stream": f"job:{job_id}", "job": job_id, "kind": kind, "priority": priority}
    _publish(publish, [JobStarted(**common, worker=worker, attempt=attempt)])
    started = time.perf_counter()
    try:
        result = run_job(job_id, request, executor=executor, store=store)
    except Exception as exc:
        seconds = time.perf_counter() - started
        if not isinstance(exc, AdcoreError):
            log.error("job %s failed with a bug", job_id, exc_info=exc)
        error = error_of(exc)
        if on_outcome is not None:
            on_outcome(kind, "failed", seconds)
        failed = JobFailed(
            **common, seconds=round(seconds, 6), error=error["message"], error_type=error["type"]
        )
        _publish(publish, [failed])
        return Outcome("failed", seconds, error=error)
    seconds = time.perf_counter() - started
    if on_outcome is not None:
        on_outcome(kind, "finished", seconds)
    summary = {k: v for k, v in result.items() if k in _SUMMARY_KEYS}
    _publish(
        publish,
        [JobFinished(**common, seconds=round(seconds, 6), output=request.get("output"), summary=summary)],
    )
    return Outcome("finished", seconds, result=result)


_SUMMARY_KEYS = ("model", "n_rows", "n_scored", "n_anomalies", "n_samples", "version", "executor")


def _publish(publish: Publish | None, events: list[Any]) -> None:
    if publish is None:
        return
    try:
        publish(events)
    except Exception as exc:  # listeners must never fail a job
        log.warning("job events: delivery failed: %s: %s", type(exc).__name__, exc)
