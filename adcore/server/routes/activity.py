"""``GET /v1/detections`` and ``GET /v1/drift``: the recent activity the dashboard draws."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from adcore.server.jsonbody import StrictJSONRoute
from adcore.server.routes.common import ERRORS, get_state
from adcore.server.schemas import DriftEvents, RecentDetections
from adcore.server.state import ServerState

LIMIT = Query(20, ge=1, le=1000, description="At most this many, newest first.")


def build_router() -> APIRouter:
    router = APIRouter(tags=["activity"], route_class=StrictJSONRoute)

    @router.get("/v1/detections", response_model=RecentDetections, responses=ERRORS)
    async def recent_detections(limit: int = LIMIT, state: ServerState = Depends(get_state)) -> Any:
        """Recent detect and score calls on this worker: counts, threshold, a score histogram."""
        return {"detections": state.activity.detections(limit)}

    @router.get("/v1/drift", response_model=DriftEvents, responses=ERRORS)
    async def recent_drift(limit: int = LIMIT, state: ServerState = Depends(get_state)) -> Any:
        """Recent ``drift.detected`` events: a model's scores stopped looking like its training scores."""
        return {"events": state.activity.drift(limit)}

    return router
