"""Jobs on Redis with RQ: the API enqueues, ``adcore worker`` processes anywhere run them.

One RQ queue per priority (``adcore-high``, ``adcore-normal``, ``adcore-low``); a worker takes
its queues in the order given, so a high job waiting is always taken before any low one. Jobs
and results are JSON (RQ's ``JSONSerializer``): nothing from Redis is ever unpickled. Records
and results are kept ``ADCORE_JOB_TTL`` seconds after they end (default 7 days); an index
(a sorted set by creation time) lists them newest first.

A worker that dies mid-job stops sending heartbeats; once its job's heartbeat expires, the
next worker maintenance (every few seconds, see :mod:`.rq_worker`) finds it in RQ's
``StartedJobRegistry`` and re-enqueues it (the job carries ``Retry(max=...)`` for exactly
this: user errors are outcomes, never RQ failures, so they are not retried).

Redis outages (:mod:`adcore.services.resilience`): every call of the API side goes through
the ``redis`` dependency, retried with jittered backoff on connection errors and timeouts
behind a circuit breaker, and fails as :class:`~adcore.errors.ServiceUnavailableError` (503
with ``Retry-After``). A submission without an idempotency key gets one attempt, since a
retry after a lost answer could enqueue the job twice; with a key, retries are safe. The
client's own retries are off (one policy, not two). Workers keep RQ's reconnect loop.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone
from typing import Any

from adcore.services.jobs.execution import DURATION_BUCKETS
from adcore.services.jobs.model import PRIORITIES, JobRecord, JobRequest, new_job_id
from adcore.services.jobs.queue import JobConflictError, JobNotFoundError, job_ttl

QUEUE_PREFIX = "adcore-"
INDEX_KEY = "adcore:jobs:index"
IDEMPOTENCY_KEY = "adcore:jobs:idempotency:{}"
STATS_KEY = "adcore:jobs:stats"
FUNCTION = "adcore.services.jobs.rq_worker.run_queued_job"
ABANDONED_RETRIES = 3
_STATUS = {"scheduled": "queued", "deferred": "queued", "stopped": "canceled", "created": "queued"}


def queue_name(priority: str) -> str:
    return f"{QUEUE_PREFIX}{priority}"


def connect(url: str, *, retries: bool = True, ping: bool = True) -> Any:
    """A Redis client for ``url`` (a bad URL or an unreachable server: a one-line ``ParameterError``).

    ``retries=False`` turns the client's own retries off, for callers that retry themselves;
    ``ping=False`` only checks the URL (a worker waits for a Redis that is not up yet).
    """
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from adcore.errors import ParameterError

    options: dict[str, Any] = {"socket_connect_timeout": 5}
    if not retries:
        options["retry"] = Retry(NoBackoff(), 0)
    try:
        client = redis.Redis.from_url(url, **options)
        if ping:
            client.ping()
    except ValueError as exc:
        raise ParameterError(f"--queue {url!r}: {exc}") from None
    except redis.RedisError as exc:
        raise ParameterError(f"cannot reach the job queue at {_redacted(url)}: {exc}") from None
    return client


def _redacted(url: str) -> str:
    from adcore.services.registry import redact_url

    return redact_url(url)


class RQJobQueue:
    """:class:`~adcore.services.jobs.queue.JobQueue` on RQ (see the module docstring)."""

    def __init__(self, url: str, *, ttl: int | None = None) -> None:
        from rq import Queue
        from rq.serializers import JSONSerializer

        from adcore.services import resilience

        self.url = url
        self.redis = connect(url, retries=False)
        where = self.redis.connection_pool.connection_kwargs
        target = f"{where.get('host', where.get('path', 'localhost'))}:{where.get('port', '')}".rstrip(":")
        self.dependency = resilience.dependency("redis", target, is_transient)
        self.ttl = ttl if ttl is not None else job_ttl()
        self.queues = {
            p: Queue(queue_name(p), connection=self.redis, serializer=JSONSerializer) for p in PRIORITIES
        }

    def _call(self, action: str, fn: Any, *, idempotent: bool = True) -> Any:
        from adcore.errors import ServiceUnavailableError

        return self.dependency.call(fn, action=action, error=ServiceUnavailableError, idempotent=idempotent)

    # ------------------------------------------------------------------- submit
    def submit(self, request: JobRequest, *, idempotency_key: str | None = None) -> tuple[JobRecord, bool]:
        return self._call(  # type: ignore[no-any-return]
            "submitting the job",
            lambda: self._submit(request, idempotency_key),
            idempotent=bool(idempotency_key),
        )

    def _submit(self, request: JobRequest, idempotency_key: str | None) -> tuple[JobRecord, bool]:
        from rq import Retry

        job_id = new_job_id()
        if idempotency_key:
            key = IDEMPOTENCY_KEY.format(hashlib.sha256(idempotency_key.encode()).hexdigest())
            if not self.redis.set(key, job_id, nx=True, ex=self.ttl):
                existing = (self.redis.get(key) or b"").decode()
                try:
                    return self._get(existing), False
                except JobNotFoundError:  # its record expired: the key starts a new job
                    self.redis.set(key, job_id, ex=self.ttl)
        now = time.time()
        self.queues[request.priority].enqueue(
            FUNCTION,
            request.to_dict(),
            job_id=job_id,
            result_ttl=self.ttl,
            failure_ttl=self.ttl,
            job_timeout=-1,
            retry=Retry(max=ABANDONED_RETRIES),
            meta={"kind": request.kind, "priority": request.priority, "attempts": 0},
            description=f"adcore {request.kind} job",
        )
        with self.redis.pipeline() as pipe:
            pipe.zadd(INDEX_KEY, {job_id: now})
            pipe.zremrangebyscore(INDEX_KEY, 0, now - self.ttl)
            pipe.execute()
        return self._get(job_id), True

    # ------------------------------------------------------------------- look up
    def _fetch(self, job_id: str) -> Any:
        from rq.exceptions import NoSuchJobError
        from rq.job import Job
        from rq.serializers import JSONSerializer

        try:
            return Job.fetch(job_id, connection=self.redis, serializer=JSONSerializer)
        except (NoSuchJobError, ValueError):
            raise JobNotFoundError(f"no job {job_id!r} (unknown, or older than the job TTL)") from None

    def _get(self, job_id: str) -> JobRecord:
        return record_of(self._fetch(job_id))

    def get(self, job_id: str) -> JobRecord:
        return self._call("reading the job", lambda: self._get(job_id))  # type: ignore[no-any-return]

    def list(self, limit: int = 50, status: str | None = None) -> list[JobRecord]:
        return self._call("listing jobs", lambda: self._list(limit, status))  # type: ignore[no-any-return]

    def _list(self, limit: int, status: str | None) -> list[JobRecord]:
        from rq.job import Job
        from rq.serializers import JSONSerializer

        ids = [i.decode() for i in self.redis.zrevrange(INDEX_KEY, 0, -1)]
        out: list[JobRecord] = []
        for start in range(0, len(ids), 200):
            jobs = Job.fetch_many(ids[start : start + 200], connection=self.redis, serializer=JSONSerializer)
            for job in jobs:
                if job is None:
                    continue
                record = record_of(job)
                if status is None or record.status == status:
                    out.append(record)
                if len(out) >= limit:
                    return out
        return out

    def cancel(self, job_id: str) -> JobRecord:
        return self._call("canceling the job", lambda: self._cancel(job_id))  # type: ignore[no-any-return]

    def _cancel(self, job_id: str) -> JobRecord:
        from rq.command import send_stop_job_command

        job = self._fetch(job_id)
        state = record_of(job).status
        if state in ("finished", "failed", "canceled"):
            raise JobConflictError(f"job {job_id} is already {state}")
        if state == "started":
            send_stop_job_command(self.redis, job_id, serializer=job.serializer)
        else:
            job.cancel()
        return self._get(job_id)

    # ------------------------------------------------------------------- metrics
    def depths(self) -> dict[str, int]:
        return self._call(  # type: ignore[no-any-return]
            "reading queue depths", lambda: {p: q.count for p, q in self.queues.items()}
        )

    def stats(self) -> dict[str, Any]:
        return self._call(  # type: ignore[no-any-return]
            "reading job statistics", lambda: stats_from_hash(self.redis.hgetall(STATS_KEY))
        )

    def ping(self) -> None:
        """One round trip (readiness): raises :class:`~adcore.errors.ServiceUnavailableError` if down."""
        self._call("reaching the job queue", self.redis.ping)

    def close(self) -> None:
        self.redis.close()


def is_transient(exc: BaseException) -> bool:
    """Connection refused or dropped, a timeout, a server still loading its data: worth a retry."""
    import redis

    return isinstance(exc, redis.ConnectionError | redis.TimeoutError | redis.BusyLoadingError)


def record_of(job: Any) -> JobRecord:
    """An RQ job as a :class:`JobRecord` (RQ's statuses folded into ours)."""
    meta = job.meta or {}
    raw = job.get_status(refresh=False)
    status = str(getattr(raw, "value", raw) or "queued")
    status = _STATUS.get(status, status)
    result = error = None
    if status == "finished":
        value = job.return_value()
        if isinstance(value, dict) and value.get("status") == "failed":
            status, error = "failed", value.get("error")
        elif isinstance(value, dict):
            result = value.get("result")
    elif status == "failed":
        error = meta.get("error") or {"type": "WorkerError", "message": _last_line(job)}
    request = dict(job.args[0]) if job.args else {}
    return JobRecord(
        id=job.id,
        kind=str(meta.get("kind") or request.get("kind")),
        priority=str(meta.get("priority") or request.get("priority")),
        status=status,
        request={k: v for k, v in request.items() if k not in ("kind", "priority", "data")},
        created_at=_iso(job.created_at),
        started_at=_iso(job.started_at) if status != "queued" else None,
        ended_at=_iso(job.ended_at) if status in ("finished", "failed") else None,
        result=result,
        error=error,
        attempts=int(meta.get("attempts") or 0),
    )


def _last_line(job: Any) -> str:
    text = (getattr(job, "exc_info", None) or "").strip()
    return text.splitlines()[-1] if text else "the worker stopped without a result"


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ------------------------------------------------------------------ shared stats
def record_stats(client: Any, kind: str, status: str, seconds: float) -> None:
    """Count one outcome and its duration in Redis, where every API instance can read them."""
    with client.pipeline() as pipe:
        pipe.hincrby(STATS_KEY, f"outcome|{kind}|{status}", 1)
        for i, bound in enumerate(DURATION_BUCKETS):
            if seconds <= bound:
                pipe.hincrby(STATS_KEY, f"bucket|{kind}|{i}", 1)
        pipe.hincrbyfloat(STATS_KEY, f"sum|{kind}", seconds)
        pipe.hincrby(STATS_KEY, f"count|{kind}", 1)
        pipe.execute()


def stats_from_hash(raw: dict[Any, Any]) -> dict[str, Any]:
    """:func:`record_stats`'s hash as :meth:`JobStats.snapshot`'s shape."""
    outcomes: dict[tuple[str, str], int] = {}
    durations: dict[str, list[float]] = {}
    n = len(DURATION_BUCKETS)
    for key, value in raw.items():
        parts = (key.decode() if isinstance(key, bytes) else key).split("|")
        number = float(value)
        if parts[0] == "outcome" and len(parts) == 3:
            outcomes[(parts[1], parts[2])] = int(number)
            continue
        row = durations.setdefault(parts[1], [0.0] * (n + 2)) if len(parts) > 1 else None
        if row is None:
            continue
        if parts[0] == "bucket" and len(parts) == 3:
            row[int(parts[2])] = number
        elif parts[0] == "sum":
            row[n] = number
        elif parts[0] == "count":
            row[n + 1] = number
    return {"outcomes": outcomes, "durations": durations}
