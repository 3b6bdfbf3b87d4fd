"""The executor's text and the cluster it names.

- ``dask`` (or ``dask://``): a ``LocalCluster`` on this machine, one single-threaded worker
  process per core (scoring is CPU-bound numpy: processes, not threads, scale it), dashboard
  on 127.0.0.1, started by the executor and closed with it.
- ``dask://HOST:PORT``: the scheduler already running there (``tcp://``; ``tls://`` needs a
  ``distributed`` security configuration and is spelled ``dask+tls://HOST:PORT``).

Options after ``?``: ``n_workers``, ``threads_per_worker``, ``memory_limit`` (local cluster
only), ``timeout`` (seconds to reach the scheduler, default 5), ``worker_timeout`` (seconds
to wait for a first worker, default 60: workers on Kubernetes take a while to start),
``partition_rows`` (rows per Parquet partition, default 1,000,000) and ``max_fit_rows``
(rows ``fit`` gathers without ``--sample``, default 10,000,000).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from adcore.errors import ParameterError

from adcore_dask.inputs import DEFAULT_PARTITION_ROWS

DEFAULT_TIMEOUT = 5.0
DEFAULT_WORKER_TIMEOUT = 60.0
DEFAULT_MAX_FIT_ROWS = 10_000_000
_INT_OPTIONS = ("n_workers", "threads_per_worker", "partition_rows", "max_fit_rows")
_FLOAT_OPTIONS = ("timeout", "worker_timeout")
_OPTIONS = (*_INT_OPTIONS, *_FLOAT_OPTIONS, "memory_limit")


class SchedulerUnreachableError(ParameterError):
    """The scheduler named by ``--executor dask://HOST:PORT`` did not answer in time (exit 2)."""


@dataclass(frozen=True)
class ClusterSpec:
    """What ``--executor`` asked for: an address (None = a local cluster) and the options."""

    address: str | None
    n_workers: int | None = None
    threads_per_worker: int = 1
    memory_limit: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    worker_timeout: float = DEFAULT_WORKER_TIMEOUT
    partition_rows: int = DEFAULT_PARTITION_ROWS
    max_fit_rows: int = DEFAULT_MAX_FIT_ROWS


def parse_executor(text: str) -> ClusterSpec:
    """``dask``, ``dask://``, ``dask://HOST:PORT``, ``dask+tls://HOST:PORT``, each with ``?options``."""
    raw = text.strip()
    if raw.lower() == "dask":
        raw = "dask://"
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in ("dask", "dask+tcp", "dask+tls"):
        raise ParameterError(f"not a dask executor address: {text!r}; use dask or dask://HOST:PORT")
    if parts.path not in ("", "/"):
        raise ParameterError(f"--executor {text!r}: a scheduler address has no path; use dask://HOST:PORT")
    values: dict[str, Any] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _OPTIONS:
            raise ParameterError(
                f"--executor {text!r}: unknown option {key!r}; options: {', '.join(_OPTIONS)}"
            )
        try:
            values[key] = (
                int(value) if key in _INT_OPTIONS else float(value) if key in _FLOAT_OPTIONS else value
            )
        except ValueError:
            raise ParameterError(f"--executor {text!r}: {key} must be a number, got {value!r}") from None
        if key != "memory_limit" and values[key] <= 0:
            raise ParameterError(f"--executor {text!r}: {key} must be positive, got {value!r}")
    address = None
    if parts.netloc:
        try:
            port = parts.port
        except ValueError:
            raise ParameterError(f"--executor {text!r}: the port is not a number") from None
        host = parts.hostname or ""
        if not host:
            raise ParameterError(f"--executor {text!r}: no scheduler host; use dask://HOST:PORT")
        protocol = "tls" if scheme == "dask+tls" else "tcp"
        address = f"{protocol}://{host}:{port or 8786}"
    local_only = [k for k in ("n_workers", "memory_limit") if k in values]
    if address is not None and local_only:
        raise ParameterError(
            f"--executor {text!r}: {', '.join(local_only)} applies to a local cluster (dask), not to a "
            "running scheduler"
        )
    return ClusterSpec(address, **values)


def connect(spec: ClusterSpec) -> tuple[Any, Any]:
    """A ``distributed.Client`` and the ``LocalCluster`` it started (None for a scheduler address).

    An unreachable scheduler is a :class:`SchedulerUnreachableError` naming the address,
    raised once ``timeout`` has passed rather than after distributed's default 30 s.
    """
    import logging

    from distributed import Client, LocalCluster

    if spec.address is None:
        cluster = LocalCluster(
            n_workers=spec.n_workers or os.cpu_count() or 1,
            threads_per_worker=spec.threads_per_worker,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            memory_limit=spec.memory_limit or "auto",
            silence_logs=logging.CRITICAL,
        )
        try:
            return Client(cluster, timeout=spec.timeout), cluster
        except BaseException:
            cluster.close()
            raise
    try:
        return Client(spec.address, timeout=spec.timeout), None
    except (OSError, TimeoutError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        if len(reason) > 160:
            reason = reason[:157] + "..."
        raise SchedulerUnreachableError(
            f"cannot reach the Dask scheduler at {spec.address} within {spec.timeout:g}s ({reason}); "
            "check the address and that `dask scheduler` runs there"
        ) from None


def dashboard_url(client: Any) -> str | None:
    """The scheduler's dashboard address, when it serves one."""
    try:
        services = client.scheduler_info().get("services", {})
        return client.dashboard_link if "dashboard" in services else None
    except Exception:  # never fail a job over a link
        return None
