"""The RQ side of ``adcore worker``: the worker class, and the function its jobs call.

Each job runs in a forked work horse (RQ's ``Worker``), so a job that leaks memory or crashes
a native library takes only itself down. The main process sends a heartbeat every
``heartbeat`` seconds while a job runs; RQ's default lets a dead worker's job sit for a
minute past its last heartbeat, ours expires after three heartbeats, and every worker runs
RQ's registry maintenance (which re-enqueues abandoned jobs) every ``heartbeat`` seconds
while idle: a SIGKILLed worker's job is taken by another worker within seconds.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Any

from adcore.errors import ParameterError
from adcore.services.jobs.model import PRIORITIES

DEFAULT_HEARTBEAT_S = 10
#: what the forked work horse inherits from the worker process: set once by :func:`build_worker`
_SETTINGS: dict[str, Any] = {"executor": None, "publish": None, "worker": "worker"}


def run_queued_job(request: dict[str, Any]) -> dict[str, Any]:
    """What an RQ job calls (by name): run it, count it, and return its outcome as JSON."""
    from rq import get_current_job

    from adcore.services.jobs.execution import execute
    from adcore.services.jobs.rq_queue import record_stats

    job = get_current_job()
    assert job is not None, "run_queued_job runs inside an RQ worker"
    attempts = int(job.meta.get("attempts") or 0) + 1
    job.meta["attempts"] = attempts
    job.save_meta()
    outcome = execute(
        job.id,
        request,
        worker=str(_SETTINGS["worker"]),
        attempt=attempts,
        executor=_SETTINGS["executor"],
        publish=_SETTINGS["publish"],
        on_outcome=lambda kind, status, seconds: record_stats(job.connection, kind, status, seconds),
    )
    if outcome.status == "failed":
        return {"status": "failed", "error": outcome.error, "seconds": outcome.seconds}
    return {"status": "finished", "result": outcome.result, "seconds": outcome.seconds}


def warm_up() -> None:
    """Import what every job needs and load the plugins, once, in the worker process.

    Each job runs in a fork of the worker: what the worker has loaded, every job starts
    with. Without this, each job would import numpy and the services and scan the plugins'
    entry points again (~0.2 s, most of a small job's time).
    """
    import importlib

    from adcore.plugins import get_host

    for module in (
        "numpy",
        "adcore.data",
        "adcore.domain.detector",
        "adcore.services.detect",
        "adcore.services.executors",
        "adcore.services.jobs.execution",
        "adcore.services.jobs.runner",
        "adcore.services.models",
        "adcore.services.registry",
        "adcore.services.scoring",
        "adcore.services.spec",
        "rq.job",
    ):
        importlib.import_module(module)
    host = get_host()
    for kind in ("detector", "executor", "storage", "subscriber"):
        host.registry(kind)
    from adcore.services.spec import detector_spec

    detector_spec("core:hbos").build()  # the parameter validation's models (pydantic), built once


def parse_priorities(text: str) -> list[str]:
    """``"high,normal,low"`` -> that order; unknown or repeated names are a ``ParameterError``."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in PRIORITIES]
    if not names or bad or len(set(names)) != len(names):
        raise ParameterError(
            f"--queues takes some of {', '.join(PRIORITIES)}, each once, in the order to take them; "
            f"got {text!r}"
        )
    return names


def build_worker(
    url: str,
    priorities: Sequence[str],
    *,
    executor: str | None = None,
    heartbeat: int = DEFAULT_HEARTBEAT_S,
    name: str | None = None,
    publish: Any = None,
) -> Any:
    """An RQ worker on ``priorities`` (in that order) with adcore's heartbeat and maintenance."""
    from rq import Worker
    from rq.serializers import JSONSerializer

    from adcore.services.jobs.rq_queue import connect, queue_name

    if heartbeat < 1:
        raise ParameterError(f"--heartbeat must be at least 1 second, got {heartbeat}")

    class AdcoreWorker(Worker):
        """RQ's forking worker whose job heartbeats expire after three missed beats."""

        def get_heartbeat_ttl(self, job: Any, working_time: float = 0.0) -> int:
            return 3 * heartbeat

    client = connect(url, ping=False)  # Redis may be down now: work_until_stopped waits for it
    if not _SETTINGS.get("warm"):
        warm_up()
    worker_name = name or f"{socket.gethostname()}.{os.getpid()}"
    _SETTINGS.update(executor=executor, publish=publish, worker=worker_name, warm=True)
    return AdcoreWorker(
        [queue_name(p) for p in priorities],
        connection=client,
        name=worker_name,
        serializer=JSONSerializer,
        job_monitoring_interval=heartbeat,
        maintenance_interval=heartbeat,
        worker_ttl=15 + heartbeat,  # RQ waits on Redis worker_ttl - 15 s: maintenance at least this often
    )


def work_until_stopped(make_worker: Any, name: str, *, burst: bool, report: Any) -> None:
    """Build a worker with ``make_worker()`` and run it until it is stopped, through Redis outages.

    RQ rides out a lost connection only while it waits for a job; a Redis that is away when
    the worker is built (RQ names its connection), registers, sends a heartbeat or cleans up
    after a job raises out of ``Worker.work``. Here that rebuilds and restarts the worker
    after a jittered, growing wait (0.5 s up to 30 s; tenacity), forever: a worker's whole
    job is to wait for its queue, as RQ's and Celery's do. Each wait is one line on stderr
    (``report``). A job that was running keeps its heartbeat semantics: if its result could
    not be recorded, it is rerun once its heartbeat expires (see :mod:`.rq_queue`).
    """
    import redis
    import tenacity

    def waiting(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        report(
            f"adcore worker {name}: Redis unavailable ({' '.join(str(error).split())}); "
            f"restarting in {state.upcoming_sleep:.1f} s"
        )

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type((redis.ConnectionError, redis.TimeoutError)),
        wait=tenacity.wait_exponential(multiplier=0.5, max=30) + tenacity.wait_random(0, 1),
        before_sleep=waiting,
        reraise=True,
    )
    for attempt in retrying:
        with attempt:
            worker = make_worker()
            _forget_own_registration(worker)
            worker.work(burst=burst, with_scheduler=False, logging_level="WARNING")


def _forget_own_registration(worker: Any) -> None:
    """Drop this worker's own key left alive by an outage (RQ refuses a second birth under a name
    it believes alive; the name is this process's, so nobody else can be using it)."""
    connection = worker.connection
    if connection.exists(worker.key) and not connection.hexists(worker.key, "death"):
        connection.delete(worker.key)
