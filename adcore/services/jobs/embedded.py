"""The server's own job queue when it runs without ``--queue``: a bounded pool of threads.

A single machine needs nothing else: jobs run in ``workers`` threads of the server process,
highest priority first, at most ``max_queued`` waiting (more is a 409 that says so). Jobs and
results live in memory: **a restart loses them**, queued and running alike; use Redis
(``--queue``) when that matters. Finished records are dropped after the TTL, or when more than
``keep`` are held.
"""

from __future__ import annotations

import hashlib
import itertools
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from adcore.services.jobs.execution import JobStats, execute
from adcore.services.jobs.model import PRIORITIES, JobRecord, JobRequest, new_job_id
from adcore.services.jobs.queue import JobConflictError, JobNotFoundError, job_ttl

DEFAULT_WORKERS = 2
DEFAULT_MAX_QUEUED = 1000
DEFAULT_KEEP = 10_000
_STOP = (len(PRIORITIES), 0, None)


def _now() -> str:
    from adcore.domain.events import utc_timestamp

    return utc_timestamp()


class EmbeddedJobQueue:
    """:class:`~adcore.services.jobs.queue.JobQueue` in this process (see the module docstring)."""

    def __init__(
        self,
        *,
        workers: int = DEFAULT_WORKERS,
        max_queued: int = DEFAULT_MAX_QUEUED,
        ttl: int | None = None,
        keep: int = DEFAULT_KEEP,
        executor: str | None = None,
        store: str | None = None,
        publish: Callable[[Sequence[Any]], None] | None = None,
    ) -> None:
        self.ttl = ttl if ttl is not None else job_ttl()
        self.max_queued = max_queued
        self.keep = keep
        self.executor = executor
        self.store = store
        self.publish = publish
        self.job_stats = JobStats()
        self._records: dict[str, JobRecord] = {}
        self._requests: dict[str, dict[str, Any]] = {}
        self._ended: dict[str, float] = {}
        self._keys: dict[str, str] = {}
        self._lock = threading.Lock()
        self._order = itertools.count()
        self._pending: queue.PriorityQueue[tuple[int, int, str | None]] = queue.PriorityQueue()
        self._workers = workers
        self._threads: list[threading.Thread] = []  # started by the first job: most servers never get one

    def submit(self, request: JobRequest, *, idempotency_key: str | None = None) -> tuple[JobRecord, bool]:
        key = hashlib.sha256(idempotency_key.encode()).hexdigest() if idempotency_key else None
        with self._lock:
            self._expire()
            if key is not None and key in self._keys and self._keys[key] in self._records:
                return self._copy(self._keys[key]), False
            if self.depth_total() >= self.max_queued:
                raise JobConflictError(
                    f"the server's job queue is full ({self.max_queued} waiting): retry later, or run "
                    "'adcore serve --queue redis://...' with workers"
                )
            job_id = new_job_id()
            self._records[job_id] = JobRecord(
                job_id, request.kind, request.priority, "queued",
                {k: v for k, v in request.spec.items() if k != "data"}, created_at=_now(),
            )  # fmt: skip
            self._requests[job_id] = request.to_dict()
            if key is not None:
                self._keys[key] = job_id
            self._pending.put((PRIORITIES.index(request.priority), next(self._order), job_id))
            if not self._threads:
                self._threads = [
                    threading.Thread(target=self._work, name=f"adcore-job-{i}", daemon=True)
                    for i in range(self._workers)
                ]
                for thread in self._threads:
                    thread.start()
            return self._copy(job_id), True

    def get(self, job_id: str) -> JobRecord:
        with self._lock:
            return self._copy(job_id)

    def list(self, limit: int = 50, status: str | None = None) -> list[JobRecord]:
        with self._lock:
            self._expire()
            rows = [r for r in reversed(self._records.values()) if status is None or r.status == status]
            return [JobRecord(**vars(r)) for r in rows[:limit]]

    def cancel(self, job_id: str) -> JobRecord:
        with self._lock:
            record = self._record(job_id)
            if record.status != "queued":
                raise JobConflictError(
                    f"job {job_id} is {record.status}: only queued jobs can be canceled in a server "
                    "without --queue (a running thread cannot be stopped)"
                )
            record.status, record.ended_at = "canceled", _now()
            self._ended[job_id] = time.monotonic()
            self._requests.pop(job_id, None)
            return self._copy(job_id)

    def depths(self) -> dict[str, int]:
        with self._lock:
            counts = dict.fromkeys(PRIORITIES, 0)
            for record in self._records.values():
                if record.status == "queued":
                    counts[record.priority] += 1
            return counts

    def depth_total(self) -> int:
        return sum(1 for r in self._records.values() if r.status == "queued")

    def stats(self) -> dict[str, Any]:
        return self.job_stats.snapshot()

    def close(self) -> None:
        for _ in self._threads:
            self._pending.put(_STOP)

    # ------------------------------------------------------------------ internals
    def _work(self) -> None:
        while True:
            _, _, job_id = self._pending.get()
            if job_id is None:
                return
            with self._lock:
                request = self._requests.pop(job_id, None)
                if request is None:  # canceled while it waited
                    continue
                record = self._records[job_id]
                record.status, record.started_at, record.attempts = "started", _now(), 1
            outcome = execute(
                job_id,
                request,
                worker="embedded",
                executor=self.executor,
                store=self.store,
                publish=self.publish,
                on_outcome=self.job_stats.add,
            )
            with self._lock:
                record.status, record.ended_at = outcome.status, _now()
                record.result, record.error = outcome.result, outcome.error
                self._ended[job_id] = time.monotonic()

    def _record(self, job_id: str) -> JobRecord:
        record = self._records.get(job_id)
        if record is None:
            raise JobNotFoundError(
                f"no job {job_id!r} (unknown, older than the job TTL, or the server restarted)"
            )
        return record

    def _copy(self, job_id: str) -> JobRecord:
        return JobRecord(**vars(self._record(job_id)))

    def _expire(self) -> None:
        """Drop ended records older than the TTL, then the oldest ended beyond ``keep``."""
        cutoff = time.monotonic() - self.ttl
        ended = sorted(self._ended.items(), key=lambda kv: kv[1])
        excess = max(0, len(self._records) - self.keep)
        for i, (job_id, when) in enumerate(ended):
            if when >= cutoff and i >= excess:
                break
            self._records.pop(job_id, None)
            self._ended.pop(job_id, None)
        live = set(self._records)
        self._keys = {k: v for k, v in self._keys.items() if v in live}
