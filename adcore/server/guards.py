"""ASGI layers that run before routing: HTTP framing, access (rate limit + API key), HEAD/OPTIONS.

Routing-level dependencies only run for a request that matched a route *and* method, so a
made-up method or an unknown path used to skip the rate limit and the key check. These
layers see every HTTP request, whatever its method or path:

* :class:`FramingGuardMiddleware` refuses a request carrying both ``Content-Length`` and
  ``Transfer-Encoding`` (RFC 9112 section 6.1: a request-smuggling vector behind proxies
  that pick the other header) with 400 and closes the connection, as the RFC asks.
* :class:`AccessMiddleware` takes a rate-limit token for every request but the probes, then
  checks the API key for every path but the open ones (liveness and the dashboard's files).
* :class:`MethodsMiddleware` answers ``HEAD`` wherever ``GET`` works (the GET response
  without its body) and ``OPTIONS`` with 204 and the path's real ``Allow`` header.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from adcore.server.errors import RateLimited, ServerError, error_response

Scope = dict[str, Any]
Receive = Callable[..., Any]
Send = Callable[..., Any]

#: paths anyone may read: the liveness probe and the dashboard's static page and files
OPEN_PATH = re.compile(r"/|/health/liveness|/dashboard/[^/]+")
#: probes a load balancer or Prometheus polls from one address: never rate limited (GET/HEAD only)
PROBE_PATHS = frozenset({"/health/liveness", "/health/readiness", "/metrics"})
READ_METHODS = frozenset({"GET", "HEAD"})
#: the methods a route may declare (HEAD and OPTIONS are this module's)
ROUTABLE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _header(scope: Scope, name: bytes) -> list[bytes]:
    return [value for key, value in scope.get("headers") or [] if key.lower() == name]


async def _answer(scope: Scope, receive: Receive, send: Send, exc: ServerError, status: int) -> None:
    """Send ``exc`` in the one error shape (what :func:`adcore_error_handler` does past routing)."""
    from adcore.server.errors import error_type_for

    response = error_response(
        status, error_type_for(exc), str(exc), headers=exc.headers or None, **(exc.extra or {})
    )
    await response(scope, receive, send)


class FramingGuardMiddleware:
    """400 (and ``Connection: close``) for a request with both Content-Length and Transfer-Encoding."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and _header(scope, b"content-length")
            and _header(scope, b"transfer-encoding")
        ):
            error = ServerError(
                "a request may not carry both Content-Length and Transfer-Encoding (RFC 9112, 6.1)",
                headers={"Connection": "close"},
            )
            await _answer(scope, receive, send, error, 400)
            return
        await self.app(scope, receive, send)


class AccessMiddleware:
    """The rate limit (first, so guessing keys is limited too), then the API key, for every request."""

    def __init__(self, app: Any, *, limiter: Any, api_key: str | None) -> None:
        self.app = app
        self.limiter = limiter
        self.expected = api_key.encode() if api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        error = self._refusal(scope)
        if error is not None:
            await _answer(scope, receive, send, error, error.http_status)
            return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> ServerError | None:
        from starlette.requests import HTTPConnection

        from adcore.server.auth import client_identity, key_refusal

        path, method = scope.get("path", ""), scope.get("method", "")
        connection = HTTPConnection(scope)
        if not (method in READ_METHODS and path in PROBE_PATHS):
            limited = rate_limit_error(self.limiter, client_identity(connection))
            if limited is not None:
                return limited
        if OPEN_PATH.fullmatch(path):
            return None
        return key_refusal(self.expected, connection)


def rate_limit_error(limiter: Any, client: str) -> RateLimited | None:
    """Take one token for ``client``: ``None`` when granted, else the 429 (``Retry-After`` in whole s)."""
    wait = limiter.acquire(client)
    if wait <= 0:
        return None
    retry = max(1, math.ceil(wait))
    return RateLimited(
        f"too many requests: this server allows {limiter.rate:g} per second per client "
        f"(bursts of {limiter.burst:g}); retry in {retry} s",
        retry_after=retry,
    )


class MethodsMiddleware:
    """``HEAD`` as ``GET`` without the body; ``OPTIONS`` as 204 with the methods the path allows."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method") if scope["type"] == "http" else None
        if method == "OPTIONS":
            await self._options(scope, receive, send)
        elif method == "HEAD":
            await self._head(scope, receive, send)
        elif method is None:
            await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, self._true_allow(scope, send))

    def _true_allow(self, scope: Scope, send: Send) -> Send:
        """A 405's ``Allow`` lists every method of the path (the router names only the first route's)."""

        async def send_with_allow(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message.get("status") == 405:
                allowed = ", ".join(allowed_methods(scope.get("app"), scope)).encode()
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                message = {**message, "headers": [*headers, (b"allow", allowed)]}
            await send(message)

        return send_with_allow

    async def _head(self, scope: Scope, receive: Receive, send: Send) -> None:
        as_get = {**scope, "method": "GET"}

        async def without_body(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            await self.app(as_get, receive, without_body)
        finally:
            if "route" in as_get:  # for the metrics' route label
                scope["route"] = as_get["route"]

    async def _options(self, scope: Scope, receive: Receive, send: Send) -> None:
        from starlette.responses import Response

        allowed = allowed_methods(scope.get("app"), scope)
        if not allowed:
            await self.app(scope, receive, send)  # no such path: the router's 404
            return
        await Response(status_code=204, headers={"Allow": ", ".join(allowed)})(scope, receive, send)


def allowed_methods(app: Any, scope: Scope) -> list[str]:
    """Every method some route serves at the request's path, HEAD beside GET, and OPTIONS; [] for none.

    Asks the router itself (``route.matches`` for each method), so included routers, path
    parameters and plugin routes count exactly as they do when a request is routed.
    """
    from starlette.routing import Match

    routes = getattr(getattr(app, "router", None), "routes", ())
    methods = [
        method
        for method in ROUTABLE_METHODS
        if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in routes)
    ]
    if not methods:
        return []
    if "GET" in methods:
        methods.append("HEAD")
    return sorted({*methods, "OPTIONS"})
