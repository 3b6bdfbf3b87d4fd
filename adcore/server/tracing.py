"""One span per HTTP request, continuing the caller's W3C ``traceparent``.

Installed by :func:`adcore.server.app.create_app` only when tracing is on
(:mod:`adcore.services.tracing`), so a server without ``OTEL_*`` variables pays nothing per
request. The span is named ``METHOD /route/{template}`` (never the raw path: ids in paths would
make every request its own span name), and the services' spans (``adcore.fit``,
``adcore.score``...) become its children, also in the thread pool, which copies the context.
"""

from __future__ import annotations

from typing import Any

from adcore.services import tracing

Scope = dict[str, Any]


class TracingMiddleware:
    """A pure ASGI middleware (no response buffering, streaming bodies pass through untouched)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1")
            for k, v in scope.get("headers") or ()
            if k.lower() in (b"traceparent", b"tracestate", b"baggage")
        }
        method = scope.get("method", "GET")
        status: dict[str, int] = {}

        async def send_status(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                status["code"] = int(message.get("status", 0))
            await send(message)

        with tracing.span(
            f"{method} {scope.get('path', '')}",
            context=headers or None,
            **{"http.request.method": method, "url.path": scope.get("path", "")},
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                route = getattr(scope.get("route"), "path", None)  # set by Starlette's router once matched
                if route:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                if "code" in status:
                    span.set_attribute("http.response.status_code", status["code"])
                    if status["code"] >= 500:
                        from opentelemetry.trace import Status, StatusCode

                        span.set_status(Status(StatusCode.ERROR))
