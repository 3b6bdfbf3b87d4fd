"""``GET /v1/algorithms`` and ``GET /v1/algorithms/{name}``: what the installed plugins offer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from adcore.server.jsonbody import StrictJSONRoute
from adcore.server.routes.common import ERRORS, get_state
from adcore.server.schemas import AlgorithmDetail, AlgorithmList
from adcore.server.state import ServerState


def build_router() -> APIRouter:
    router = APIRouter(tags=["algorithms"], route_class=StrictJSONRoute)

    @router.get("/v1/algorithms", response_model=AlgorithmList, responses=ERRORS)
    async def list_algorithms(state: ServerState = Depends(get_state)) -> Any:
        """Every detector with its parameters and their JSON Schema (as ``adcore algos``)."""
        return {"algorithms": await state.run(state.algorithms)}

    @router.get("/v1/algorithms/{name}", response_model=AlgorithmDetail, responses=ERRORS)
    async def describe_algorithm(name: str, state: ServerState = Depends(get_state)) -> Any:
        """One detector in full (as ``adcore algos show NAME``); a bare name resolves as in the CLI."""
        from adcore.services.catalog import describe_algorithm as describe

        return await state.run(describe, name)

    return router
