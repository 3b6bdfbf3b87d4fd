"""``GET /metrics``: Prometheus text format (HTTP, scoring, model-load and drift metrics)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from adcore.server.jsonbody import StrictJSONRoute
from adcore.server.routes.common import get_state
from adcore.server.state import ServerState


def build_router() -> APIRouter:
    router = APIRouter(tags=["metrics"], route_class=StrictJSONRoute)

    @router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    async def metrics(state: ServerState = Depends(get_state)) -> Response:
        """Every metric of this worker; scrape with the API key as a bearer token when one is set."""
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return router
