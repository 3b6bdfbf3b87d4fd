"""What a job does once a worker (RQ's or the server's own pool) takes it.

``score`` and ``fit`` go through the batch-executor port (``open_executor(...).score(ScoreJob)``
and ``.fit(FitJob)``), so ``"executor": "dask://..."`` runs a job on a cluster and the default is
the local executor (``$ADCORE_EXECUTOR``, else ``local``; ``adcore worker --executor`` changes it).
``detect`` builds its detector from the same spec as ``POST /v1/detect``. Errors are raised as
they are; the queue records them (:func:`adcore.services.jobs.model.error_of`).

A score job's local output is written exactly once, even when a worker dies mid-job and another
runs it again: the executor writes a temporary name keyed by the job id, then a small marker
with the summary is written, then the temporary file is renamed onto ``output``. A second run
that finds the marker does not score again; it finishes the rename if the first run died
before it and returns the recorded summary. Remote outputs (``s3://``) are written by the
executor directly (a rerun writes them again, whole).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from typing import Any

from adcore.errors import ParameterError

MARKER_SUFFIX = ".done.json"
#: The job payload's field holding the submitter's W3C trace context (``{"traceparent": ...}``),
#: set by ``POST /v1/jobs`` when tracing is on, so the job's span joins the request's trace.
TRACE_FIELD = "trace_context"


def run_job(
    job_id: str, request: Mapping[str, Any], *, executor: str | None = None, store: str | None = None
) -> dict[str, Any]:
    """Run one job and return its JSON-safe summary.

    ``executor`` is the default for score/fit jobs that name none; ``store`` the model store
    (default ``$ADCORE_STORE``, else the embedded one).
    """
    from adcore.services import tracing

    kind = request.get("kind")
    spec = {k: v for k, v in request.items() if k not in ("kind", "priority", TRACE_FIELD)}
    carrier = request.get(TRACE_FIELD)
    with tracing.span(
        "adcore.job",
        context=carrier if isinstance(carrier, Mapping) else None,
        job=job_id,
        kind=kind,
        algorithm=spec.get("algorithm"),
        model=spec.get("model") or spec.get("name"),
    ):
        if kind == "score":
            return _score(job_id, spec, executor, store)
        if kind == "fit":
            return _fit(spec, executor, store)
        if kind == "detect":
            return _detect(spec)
        raise ParameterError(f"unknown job kind {kind!r}")


# ---------------------------------------------------------------------------- kinds
def _executor(spec: Mapping[str, Any], default: str | None) -> Any:
    from adcore.services.executors import open_executor

    return open_executor(spec.get("executor") or default)


def _columns(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [c.strip() for c in value.split(",") if c.strip()]
    if isinstance(value, list) and all(isinstance(c, str) for c in value):
        return list(value)
    raise ParameterError("columns must be a list of names or a comma-separated string")


def _score(
    job_id: str, spec: Mapping[str, Any], default_executor: str | None, store: str | None
) -> dict[str, Any]:
    from adcore.services.executors import ScoreJob

    output = spec.get("output")
    local = output is not None and "://" not in output
    target = output
    if local:
        done = _read_marker(output, job_id)
        if done is not None:
            _publish(output, job_id)
            return done
        target = _temporary(output, job_id)
    job = ScoreJob(
        model=spec["model"],
        input=spec["input"],
        output=target,
        store=store,
        chunk_size=int(spec.get("chunk_size") or 100_000),
        columns=_columns(spec.get("columns")),
        header=spec.get("header"),
        nan_policy=spec.get("nan") or "error",
    )
    with contextlib.closing(_executor(spec, default_executor)) as runner:
        summary = dict(runner.score(job))
    summary["output"] = output
    if local:
        _write_marker(output, job_id, summary)
        _publish(output, job_id)
    return summary


def _fit(spec: Mapping[str, Any], default_executor: str | None, store: str | None) -> dict[str, Any]:
    from adcore.services.executors import FitJob
    from adcore.services.spec import detector_spec

    detector = detector_spec(
        spec["algorithm"],
        spec.get("params") or {},
        contamination=spec.get("contamination"),
        threshold=spec.get("threshold"),
        seed=spec.get("seed"),
        draw_seed=True,
    )
    detector.build()  # parameter errors before any data is read
    job = FitJob(
        spec=detector,
        input=spec["input"],
        model=spec["name"],
        store=store,
        sample=spec.get("sample"),
        columns=_columns(spec.get("columns")),
        header=spec.get("header"),
        nan_policy=spec.get("nan") or "error",
    )
    with contextlib.closing(_executor(spec, default_executor)) as runner:
        outcome = runner.fit(job)
    record = outcome.record
    return {"model": record.ref, "version": int(record.version), "seed": record.seed, **outcome.summary}


def _detect(spec: Mapping[str, Any]) -> dict[str, Any]:
    import numpy as np

    from adcore.data import Dataset
    from adcore.services.detect import fit_detect
    from adcore.services.spec import detector_spec

    detector = detector_spec(
        spec.get("algorithm") or "core:hbos",
        spec.get("params") or {},
        contamination=spec.get("contamination"),
        threshold=spec.get("threshold"),
        seed=spec.get("seed"),
        draw_seed=True,
    )
    rows = np.asarray(spec["data"], dtype=np.float64)
    result = fit_detect(detector.build(), Dataset.from_array(rows, spec.get("feature_names"), source="job"))
    body = result.to_dict()
    body["n_rows"] = body.get("n_samples")
    return body


# ------------------------------------------------------------------- exactly once
def _temporary(output: str, job_id: str) -> str:
    """``dir/.NAME.job-ID.EXT``: same directory (rename is atomic), same extension (same format)."""
    folder, base = os.path.split(output)
    ext = os.path.splitext(base)[1]
    return os.path.join(folder, f".{base}.job-{job_id}{ext}")


def _marker(output: str, job_id: str) -> str:
    folder, base = os.path.split(output)
    return os.path.join(folder, f".{base}.job-{job_id}{MARKER_SUFFIX}")


def _read_marker(output: str, job_id: str) -> dict[str, Any] | None:
    try:
        with open(_marker(output, job_id), encoding="utf-8") as fh:
            return dict(json.load(fh))
    except FileNotFoundError:
        return None


def _write_marker(output: str, job_id: str, summary: Mapping[str, Any]) -> None:
    path = _marker(output, job_id)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(dict(summary), fh, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _publish(output: str, job_id: str) -> None:
    """Rename the job's temporary output onto ``output``, unless an earlier run already did."""
    temporary = _temporary(output, job_id)
    if os.path.lexists(temporary):
        os.replace(temporary, output)
