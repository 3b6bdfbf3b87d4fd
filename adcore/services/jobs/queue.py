"""The job-queue port: what the API and ``adcore jobs`` need from a queue, whichever it is.

Two implementations: :class:`~adcore.services.jobs.rq_queue.RQJobQueue` (``redis://...``: durable,
workers on any machine) and :class:`~adcore.services.jobs.embedded.EmbeddedJobQueue` (the
server's own bounded thread pool: nothing else to run, jobs lost on restart).
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from adcore.errors import AdcoreError, ParameterError
from adcore.services.jobs.model import JobRecord, JobRequest

QUEUE_ENV = "ADCORE_QUEUE"
TTL_ENV = "ADCORE_JOB_TTL"
DEFAULT_TTL_S = 7 * 24 * 3600


class JobNotFoundError(AdcoreError, KeyError):
    """No job with that id (never existed, or its record outlived the TTL)."""

    http_status = 404

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class JobConflictError(AdcoreError):
    """The job cannot do that now (cancel a finished job, a full embedded queue)."""

    http_status = 409


class JobQueue(Protocol):
    """Submit, look up, list and cancel jobs; ``depths`` feeds /metrics."""

    def submit(self, request: JobRequest, *, idempotency_key: str | None = None) -> tuple[JobRecord, bool]:
        """Enqueue ``request``; returns the record and whether it is new (False: the key's job)."""
        ...

    def get(self, job_id: str) -> JobRecord: ...

    def list(self, limit: int = 50, status: str | None = None) -> list[JobRecord]: ...

    def cancel(self, job_id: str) -> JobRecord: ...

    def depths(self) -> dict[str, int]: ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


def job_ttl(environ: dict[str, str] | None = None) -> int:
    """Seconds a finished or failed job's record and result are kept (``ADCORE_JOB_TTL``)."""
    raw = (os.environ if environ is None else environ).get(TTL_ENV)
    if not raw:
        return DEFAULT_TTL_S
    try:
        ttl = int(raw)
    except ValueError:
        raise ParameterError(f"{TTL_ENV} must be a number of seconds, got {raw!r}") from None
    if ttl < 1:
        raise ParameterError(f"{TTL_ENV} must be at least 1 second, got {ttl}")
    return ttl


def queue_url(url: str | None = None) -> str | None:
    """The queue in effect: the argument, else ``$ADCORE_QUEUE``, else None (embedded)."""
    return url or os.environ.get(QUEUE_ENV) or None


def open_queue(url: str | None, **embedded_options: Any) -> JobQueue:
    """``redis://...`` (or ``rediss://``): RQ on that Redis; ``None``: the embedded pool."""
    if url is None:
        from adcore.services.jobs.embedded import EmbeddedJobQueue

        return EmbeddedJobQueue(**embedded_options)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ParameterError(f"--queue must be a redis:// URL, got {url!r}")
    from adcore.services.jobs.rq_queue import RQJobQueue

    return RQJobQueue(url)
