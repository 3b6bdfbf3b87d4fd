"""``/v1/jobs``: submit asynchronous jobs (202 + ``Location``), look them up, list and cancel them.

The body names URIs, never large data (``detect`` jobs carry a few inline rows). Every path
is checked against ``ADCORE_JOB_ROOTS`` before anything is enqueued (403 otherwise, see
:mod:`adcore.services.jobs.roots`). ``Idempotency-Key: K`` makes a retried POST return the job
the first one created. Queue calls go to Redis (or the in-process pool) off the event loop.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from adcore.server.errors import PayloadTooLarge, public_text
from adcore.server.jsonbody import StrictJSONRoute
from adcore.server.routes.common import ERRORS, get_state
from adcore.server.schemas import ErrorResponse
from adcore.server.state import ServerState

JOB_ID = Path(..., description="The job's id, as POST /v1/jobs returned it.")
JOB_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": ErrorResponse, "description": "No such job (or older than the job TTL)."},
    409: {"model": ErrorResponse, "description": "The job has ended, or the in-process queue is full."},
}
REFUSED = {403: {"model": ErrorResponse, "description": "A path outside ADCORE_JOB_ROOTS (or with '..')."}}
JOB_EXAMPLE = {"kind": "score", "model": "payments@3", "input": "/data/in.csv", "output": "/data/out.csv"}


def job_body(state: ServerState, record: Any) -> dict[str, Any]:
    """A job record as the API returns it: the error message without server paths or the store URL."""
    body = record.to_dict()
    if body.get("error"):
        error = dict(body["error"])
        error["message"] = public_text(str(error.get("message", "")), state.settings.store)
        body["error"] = error
    return body


def _check_rows(state: ServerState, data: Any) -> None:
    """A ``detect`` job's inline rows obey the same limits as ``POST /v1/detect``."""
    if isinstance(data, list) and len(data) > state.settings.max_rows:
        raise PayloadTooLarge(f"{len(data)} rows; this server accepts at most {state.settings.max_rows}")
    width = len(data[0]) if isinstance(data, list) and data and isinstance(data[0], list) else 0
    if width > state.settings.max_features:
        raise PayloadTooLarge(f"{width} features; this server accepts at most {state.settings.max_features}")


def build_router() -> APIRouter:
    router = APIRouter(tags=["jobs"], route_class=StrictJSONRoute)

    @router.post("/v1/jobs", status_code=202, responses={**JOB_ERRORS, **REFUSED})
    async def submit_job(
        body: dict[str, Any] = Body(..., examples=[JOB_EXAMPLE]),
        idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=256),
        state: ServerState = Depends(get_state),
    ) -> Any:
        """Queue a ``score``, ``fit`` or ``detect`` job; 202 with its id and ``Location: /v1/jobs/ID``.

        ``priority``: high, normal (default) or low. Poll the Location until ``status`` is
        finished, failed or canceled.
        """
        from adcore.domain.events import JobQueued
        from adcore.services import tracing
        from adcore.services.jobs.model import JobRequest
        from adcore.services.jobs.roots import checked_request
        from adcore.services.jobs.runner import TRACE_FIELD

        request = JobRequest.parse(body)
        if request.kind == "detect":
            _check_rows(state, request.spec.get("data"))
        request = checked_request(request)  # 403 before anything is enqueued
        carrier = tracing.inject()  # {} when tracing is off: nothing added
        if carrier:  # the worker's adcore.job span continues this request's trace
            request.spec[TRACE_FIELD] = carrier
        record, new = await run_in_threadpool(state.jobs.submit, request, idempotency_key=idempotency_key)
        if new and state.events.wants(JobQueued.type):
            state.events.publish([
                JobQueued(
                    stream=f"job:{record.id}", job=record.id, kind=record.kind, priority=record.priority,
                    input=request.input, output=request.output,
                )
            ])  # fmt: skip
        headers = {"Location": f"/v1/jobs/{record.id}"}
        if not new:
            headers["Idempotent-Replayed"] = "true"
        return JSONResponse(job_body(state, record), status_code=202, headers=headers)

    @router.get("/v1/jobs", responses=JOB_ERRORS)
    async def list_jobs(
        limit: int = Query(50, ge=1, le=1000, description="At most this many, newest first."),
        status: str | None = Query(None, description="Only jobs in this status."),
        state: ServerState = Depends(get_state),
    ) -> Any:
        """The newest jobs (kept for ``ADCORE_JOB_TTL`` seconds after they end)."""
        records = await run_in_threadpool(state.jobs.list, limit, status)
        return {"jobs": [job_body(state, r) for r in records]}

    @router.get("/v1/jobs/{job_id}", responses=JOB_ERRORS)
    async def get_job(job_id: str = JOB_ID, state: ServerState = Depends(get_state)) -> Any:
        """One job: status (queued, started, finished, failed, canceled), times, result or error."""
        return job_body(state, await run_in_threadpool(state.jobs.get, job_id))

    async def cancel(job_id: str, state: ServerState) -> Any:
        return job_body(state, await run_in_threadpool(state.jobs.cancel, job_id))

    @router.delete("/v1/jobs/{job_id}", responses=JOB_ERRORS)
    async def delete_job(job_id: str = JOB_ID, state: ServerState = Depends(get_state)) -> Any:
        """Cancel a queued job (or stop a running one on a worker); 409 once it has ended."""
        return await cancel(job_id, state)

    @router.post("/v1/jobs/{job_id}/cancel", responses=JOB_ERRORS)
    async def cancel_job(job_id: str = JOB_ID, state: ServerState = Depends(get_state)) -> Any:
        """The same as ``DELETE /v1/jobs/{job_id}``, for clients that cannot send DELETE."""
        return await cancel(job_id, state)

    return router
