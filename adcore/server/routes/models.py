"""``/v1/models``: list, fit and delete stored models; score and explain with one.

A model is addressed as ``{ref}``: ``name`` (its latest version), ``name@3`` or
``name@latest``. Models come only from the server's own store (``--store``): no route
takes a file path or an artifact from the client, so nothing a client sends is unpickled.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Path, Query

from adcore.io.jsonio import finite_or_none
from adcore.server import services
from adcore.server.jsonbody import JSONBytes, MatrixJSONRoute
from adcore.server.routes.common import ERRORS, checked_rows, get_state, result_body
from adcore.server.schemas import (
    DetectionResponse,
    ExplainRequest,
    ExplainResponse,
    FitRequest,
    ModelList,
    ModelOut,
    RemovedModels,
    ScoreRequest,
)
from adcore.server.state import ServerState

REF = Path(..., description="name, name@version or name@latest", examples=["payments@1"])


def model_body(record: Any) -> dict[str, Any]:
    """An index entry as the API returns it (the artifact's storage key stays private)."""
    out = record.to_dict()
    out.pop("artifact", None)
    out["threshold"] = finite_or_none(out.get("threshold"))
    out["score_quantiles"] = {k: finite_or_none(v) for k, v in (out.get("score_quantiles") or {}).items()}
    return out


def build_router() -> APIRouter:
    router = APIRouter(tags=["models"], route_class=MatrixJSONRoute)

    @router.get("/v1/models", response_model=ModelList, responses=ERRORS)
    async def list_models(
        name: str | None = Query(None, description="Only this model's versions."),
        state: ServerState = Depends(get_state),
    ) -> Any:
        """Every stored model version, by name then version."""
        records = await state.run(services.list_models, state.stores, name)
        return {"models": [model_body(r) for r in records]}

    @router.post("/v1/models", response_model=ModelOut, status_code=201, responses=ERRORS)
    async def fit_model(body: FitRequest, state: ServerState = Depends(get_state)) -> Any:
        """Fit ``algorithm`` on ``data`` and save it as the next version of ``name``."""
        checked_rows(state, body)
        record = await state.run(
            services.fit,
            body.data,
            body.feature_names,
            name=body.name,
            stores=state.stores,
            algorithm=body.algorithm,
            params=body.params,
            contamination=body.contamination,
            threshold=body.threshold,
            seed=body.seed,
        )
        response = model_body(record)
        state.record_fit(record)  # model.saved, once the body is built
        return response

    @router.delete("/v1/models/{ref}", response_model=RemovedModels, responses=ERRORS)
    async def delete_model(
        ref: str = REF,
        version: int | None = Query(None, ge=1, description="Delete only this version."),
        state: ServerState = Depends(get_state),
    ) -> Any:
        """Delete every version of ``name``, or one (``name@3`` or ``?version=3``)."""
        removed = await state.run(services.remove_models, state.stores, ref, version)
        for record in removed:
            state.models.forget(record.name, record.version)
            state.drift.forget(record.name, record.version)
        return {"removed": [model_body(r) for r in removed]}

    @router.post("/v1/models/{ref}/score", response_model=DetectionResponse, responses=ERRORS)
    async def score(body: ScoreRequest, ref: str = REF, state: ServerState = Depends(get_state)) -> Any:
        """Score ``data`` with a stored model and its stored threshold (no refit).

        The features must match the training data's (count always; names when both sides
        have them). Each call also feeds the model's drift detector (``GET /v1/drift``).
        """
        checked_rows(state, body)

        def work() -> Any:
            started = time.perf_counter()
            model = state.models.get(ref, state.stores)
            result = services.score(model, body.data, body.feature_names)
            duration_ms = (time.perf_counter() - started) * 1000
            response = JSONBytes(result_body(result))
            state.record_scoring(result, kind="score", model=model, duration_ms=duration_ms)  # after the body
            return response

        return await state.run(work)

    @router.post("/v1/models/{ref}/explain", response_model=ExplainResponse, responses=ERRORS)
    async def explain(body: ExplainRequest, ref: str = REF, state: ServerState = Depends(get_state)) -> Any:
        """Per-feature contributions to each row's score, largest first (``top`` keeps the largest).

        Explaining costs about ``n_features`` scorings per row, hence its own, lower row
        limit (``--max-explain-rows``).
        """
        checked_rows(state, body, max_rows=state.settings.max_explain_rows)

        def work() -> Any:
            model = state.models.get(ref, state.stores)
            rows = services.explain(model, body.data, body.feature_names, body.top)
            return {
                "model": model.ref,
                "explanations": [{k: finite_or_none(v) for k, v in row.items()} for row in rows],
            }

        return await state.run(work)

    return router
