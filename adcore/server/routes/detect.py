"""``POST /v1/detect``: fit an algorithm on the posted rows and score them (nothing stored)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends

from adcore.server import services
from adcore.server.jsonbody import JSONBytes, MatrixJSONRoute
from adcore.server.routes.common import ERRORS, checked_rows, get_state, result_body
from adcore.server.schemas import DetectionResponse, DetectRequest
from adcore.server.state import ServerState


def build_router() -> APIRouter:
    router = APIRouter(tags=["detect"], route_class=MatrixJSONRoute)

    @router.post("/v1/detect", response_model=DetectionResponse, responses=ERRORS)
    async def detect(body: DetectRequest, state: ServerState = Depends(get_state)) -> Any:
        """Fit ``algorithm`` on ``data`` and return a score and a 0/1 label for every row.

        The same as ``adcore run``: the same data, parameters and seed give the same scores.
        """
        checked_rows(state, body)

        def work() -> Any:
            started = time.perf_counter()
            result = services.detect(
                body.data,
                body.feature_names,
                algorithm=body.algorithm,
                params=body.params,
                contamination=body.contamination,
                threshold=body.threshold,
                seed=body.seed,
                p_values=body.p_values,
            )
            duration_ms = (time.perf_counter() - started) * 1000
            payload = result_body(result)
            if body.p_values and result.p_values is not None:
                payload["p_values"] = result.p_values.tolist()
            response = JSONBytes(payload)
            state.record_scoring(result, kind="detect", duration_ms=duration_ms)  # events after the body
            return response

        return await state.run(work)

    return router
