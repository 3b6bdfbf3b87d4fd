"""The app factory: routes, the auth and rate-limit dependencies, middleware, error handlers.

Wiring, in order from the outside in: request metrics (so 413s and 429s are counted
too), the streaming body-size limit, the catch-all that turns a bug into a 500 without
dropping the connection, then FastAPI's routing with one error handler per
kind of exception (:mod:`adcore.server.errors`). ``/health/liveness`` and the
dashboard's static files are open; everything else needs the API key when one is set,
and the ``/v1`` routes, plugin routes included, are rate limited per client.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse

from adcore.server.auth import api_key_checker
from adcore.server.errors import UnhandledErrorMiddleware, install_error_handlers
from adcore.server.jsonbody import StrictJSONRoute
from adcore.server.limits import BodySizeLimitMiddleware, rate_limit_checker
from adcore.server.metrics import RequestMetricsMiddleware
from adcore.server.routes import activity, algorithms, dashboard, detect, health, metrics, models
from adcore.server.routes.common import AUTH_ERRORS, LIMITED_ERRORS
from adcore.server.settings import ServerSettings
from adcore.server.state import ServerState

log = logging.getLogger("adcore.server")

DESCRIPTION = """Anomaly detection over HTTP: the same detectors, model store and explanations as
the `adcore` CLI. Send `Authorization: Bearer <ADCORE_API_KEY>` when the server has a key.
Every error is `{"error": {"type": ..., "message": ...}}`."""


def create_app(settings: ServerSettings | None = None, *, host: Any = None) -> FastAPI:
    """Build the app for ``settings`` (default: from the environment, as ``--workers`` needs).

    ``host`` is the plugin host whose plugins may add routes (default: the process-wide one).
    """
    import adcore
    from adcore.plugins import get_host

    settings = settings if settings is not None else ServerSettings.from_env()
    plugin_host = host if host is not None else get_host()
    state = ServerState.create(settings, plugin_host)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(
        title="adcore",
        version=adcore.__version__,
        description=DESCRIPTION,
        docs_url=None,  # Swagger UI would load its JS from a CDN
        redoc_url=None,
        openapi_url=None,  # served below, behind the API key
        lifespan=lifespan,
    )
    app.state.adcore = state
    install_error_handlers(app)

    authenticated = [Depends(api_key_checker(settings.api_key))]
    # the rate limit runs first, so that guessing keys is rate limited too
    limited = [Depends(rate_limit_checker(state.rate_limiter)), *authenticated]

    app.include_router(health.build_liveness_router())
    app.include_router(health.build_readiness_router(), dependencies=authenticated, responses=AUTH_ERRORS)
    app.include_router(metrics.build_router(), dependencies=authenticated, responses=AUTH_ERRORS)
    app.include_router(_openapi_router(app), dependencies=authenticated)
    for module in (detect, algorithms, models, activity):
        app.include_router(module.build_router(), dependencies=limited, responses=LIMITED_ERRORS)
    app.include_router(dashboard.build_router())
    plugin_host.add_routes(
        lambda: APIRouter(route_class=StrictJSONRoute),
        lambda router: app.include_router(router, dependencies=limited, responses=LIMITED_ERRORS),
    )
    for info in plugin_host.plugins():  # a broken plugin must be visible where the server is run
        for error in info.errors:
            log.warning("plugin %s: %s", info.name, error)

    app.add_middleware(UnhandledErrorMiddleware)  # innermost: a bug is a 500, the connection lives on
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetricsMiddleware, metrics=state.metrics)
    return app


def _openapi_router(app: FastAPI) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/openapi.json")
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    return router


def app_from_env() -> FastAPI:
    """The uvicorn factory for ``--workers N``: each worker builds its app from the environment."""
    return create_app(ServerSettings.from_env())
