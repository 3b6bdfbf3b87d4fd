"""The app factory: routes, the auth and rate-limit dependencies, middleware, error handlers.

Wiring, in order from the outside in: request metrics (so 400s, 413s and 429s are
counted too), the HTTP framing check, access (the rate limit, then the API key, for
every request whatever its method or path: :mod:`adcore.server.guards`), HEAD and
OPTIONS, the streaming body-size limit, the catch-all that turns a bug into a 500
without dropping the connection, then FastAPI's routing with one error handler per
kind of exception (:mod:`adcore.server.errors`). ``/health/liveness`` and the
dashboard's static files are open; everything else needs the API key when one is set.
Every request but the probes (liveness, readiness, /metrics) is rate limited per client.
Trailing-slash redirects are off: Starlette builds them from the Host header, so a
forged Host would turn the server into an open redirect.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse

from adcore.server.auth import api_key_checker
from adcore.server.errors import UnhandledErrorMiddleware, install_error_handlers
from adcore.server.guards import AccessMiddleware, FramingGuardMiddleware, MethodsMiddleware
from adcore.server.jsonbody import StrictJSONRoute
from adcore.server.limits import BodySizeLimitMiddleware
from adcore.server.metrics import RequestMetricsMiddleware
from adcore.server.routes import activity, algorithms, dashboard, detect, health, jobs, metrics, models
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
        redirect_slashes=False,  # its redirects are absolute URLs built from the client's Host header
        **_native_telemetry_off(),
    )
    app.state.adcore = state
    install_error_handlers(app)
    _install_openapi(app, settings)

    # AccessMiddleware enforces the key on every request; the dependency documents it in OpenAPI
    authenticated = [Depends(api_key_checker(settings.api_key))]
    limited = authenticated  # the rate limit itself is AccessMiddleware's, before the key

    app.include_router(health.build_liveness_router())
    app.include_router(health.build_readiness_router(), dependencies=authenticated, responses=AUTH_ERRORS)
    app.include_router(metrics.build_router(), dependencies=authenticated, responses=AUTH_ERRORS)
    app.include_router(_openapi_router(app), dependencies=authenticated)
    for module in (detect, algorithms, models, activity, jobs):
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
    app.add_middleware(MethodsMiddleware)
    app.add_middleware(AccessMiddleware, limiter=state.rate_limiter, api_key=settings.api_key)
    app.add_middleware(FramingGuardMiddleware)
    app.add_middleware(RequestMetricsMiddleware, metrics=state.metrics)
    from adcore.services import tracing

    if tracing.enabled():  # outermost: the request's span covers every other middleware
        from adcore.server.tracing import TracingMiddleware

        app.add_middleware(TracingMiddleware)
    return app


def _native_telemetry_off() -> dict[str, Any]:
    """``FastAPI(telemetry=...)`` turning FastAPI's own OpenTelemetry off, where it has any.

    FastAPI 0.16x instruments itself as soon as a global tracer provider is set (which
    ``adcore.services.tracing`` does when ``OTEL_*`` asks for tracing): a second server span per
    request, beside :class:`~adcore.server.tracing.TracingMiddleware`'s, plus spans for dependency
    resolution, the endpoint and serialisation. They more than doubled the spans a
    ``/v1/detect`` exports and its p99 latency (benchmarks/tracing_overhead.py), so adcore keeps
    one request span of its own, the same on every FastAPI version it supports. Older FastAPI
    has no ``telemetry`` argument: nothing to turn off.
    """
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def _install_openapi(app: FastAPI, settings: ServerSettings) -> None:
    """Make ``app.openapi()`` state this server's limits (:mod:`adcore.server.openapi`), once."""
    from adcore.server.openapi import with_limits

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_limits(generate(), settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _openapi_router(app: FastAPI) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/openapi.json")
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    return router


def app_from_env() -> FastAPI:
    """The uvicorn factory for ``--workers N``: each worker builds its app from the environment."""
    return create_app(ServerSettings.from_env())
