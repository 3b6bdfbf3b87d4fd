"""One error shape for every failure: ``{"error": {"type": ..., "message": ...}}``.

Errors the server raises itself (auth, limits, readiness) are ``AdcoreError`` subclasses
carrying their ``http_status``, so they reach the same single handler as the core's
errors (unknown algorithm 404, tampered model 409, bad data 400...). The other handlers
only translate what the framework raises (validation 422, unknown route 404) and bugs
(500, without internals) into the same shape.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException

from adcore.errors import AdcoreError

log = logging.getLogger("adcore.server")

_STATUS_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "not_ready",
}
_MAX_DETAILS = 20


def error_type_for(exc: BaseException) -> str:
    """``error_type`` if set, else the snake-cased class name (``ModelNotFoundError``: model_not_found)."""
    explicit = getattr(exc, "error_type", None)
    if explicit:
        return str(explicit)
    name = type(exc).__name__.removesuffix("Error") or type(exc).__name__
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def error_payload(error_type: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"type": error_type, "message": message, **extra}}


def error_response(
    status: int, error_type: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse(error_payload(error_type, message, **extra), status_code=status, headers=headers)


class ServerError(AdcoreError):
    """An error the server itself raises; ``headers`` go on the response (``Retry-After``...)."""

    error_type = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.headers = headers or {}
        self.extra = extra


class Unauthorized(ServerError):
    http_status = 401
    error_type = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class RateLimited(ServerError):
    http_status = 429
    error_type = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)}, retry_after=retry_after)


class PayloadTooLarge(ServerError):
    """Too many bytes, rows or features for this server's limits."""

    http_status = 413
    error_type = "payload_too_large"


class BodyTooLarge(PayloadTooLarge, StarletteHTTPException):
    """Raised from inside the body stream; also an HTTPException so FastAPI's body reader
    passes it on unchanged instead of turning it into a generic 400."""

    def __init__(self, message: str) -> None:
        PayloadTooLarge.__init__(self, message)
        self.status_code = 413
        self.detail = message

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidPayload(ServerError):
    """A body that parses but cannot be a data matrix (ragged rows, wrong feature names)."""

    http_status = 422
    error_type = "validation_error"


class NotReady(ServerError):
    http_status = 503
    error_type = "not_ready"


#: a URL with a scheme (a store, an artifact location) and an absolute filesystem path
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://\S*[^\s'\".,;:)]")
_ABS_PATH = re.compile(r"(?<![\w/.~-])~?/(?!v1/|health/|metrics\b|dashboard/)[^\s'\"]*[^\s'\".,;:)]")
STORE_WORDS = "the model store"


def public_text(text: str, store: str | None) -> str:
    """``text`` without the store's URL, other URLs or server paths: what a client may read.

    The core's messages name the store and files for the person at the CLI; over HTTP the
    store URL can hold credentials and paths describe the server's disk, so both go.
    """
    forms = _store_forms(store)
    for form in forms:
        text = text.replace(f"in the store {form}", f"in {STORE_WORDS}")
    text = _ABS_PATH.sub("<path>", _URL.sub("<url>", text))
    for form in forms:  # a relative store path ("data/models"); a bare word could be any word
        if "/" in form:
            text = text.replace(form, "<store>")
    return text


def _store_forms(store: str | None) -> list[str]:
    """The spellings of the server's store URL a message may contain, longest first."""
    from pathlib import Path

    from adcore.services.registry import redact_url, store_url

    try:
        resolved = store_url(store)
    except Exception:  # never let the scrubbing itself fail an error response
        resolved = store or ""
    forms = {f for f in (store, resolved) if f}
    for form in list(forms):
        forms.add(redact_url(form))
        if "://" not in form:
            forms.add(str(Path(form).expanduser()))
            forms.add(str(Path(form).expanduser().resolve()))
    return sorted((f for f in forms if len(f) > 1), key=len, reverse=True)


def _server_store(request: Any) -> str | None:
    state = getattr(getattr(getattr(request, "app", None), "state", None), "adcore", None)
    return getattr(getattr(state, "settings", None), "store", None)


async def adcore_error_handler(request: Any, exc: AdcoreError) -> Any:
    """The one place an ``AdcoreError`` becomes an HTTP response: its ``http_status``, our shape.

    The message and any text in its extra fields go through :func:`public_text`.
    """
    store = _server_store(request)
    headers = getattr(exc, "headers", None) or None
    extra = _public_extra(getattr(exc, "extra", None) or {}, store)
    message = public_text(str(exc) or type(exc).__name__, store)
    return error_response(exc.http_status, error_type_for(exc), message, headers=headers, **extra)


def _public_extra(extra: dict[str, Any], store: str | None) -> dict[str, Any]:
    """Extra fields with their strings (one level of dicts deep: readiness' checks) made public."""

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return public_text(value, store)
        if isinstance(value, dict):
            return {k: public_text(v, store) if isinstance(v, str) else v for k, v in value.items()}
        return value

    return {key: clean(value) for key, value in extra.items()}


async def validation_error_handler(request: Any, exc: Any) -> Any:
    """Pydantic's 422, reduced to where and what (the offending input is never echoed back)."""
    details = []
    for err in exc.errors()[:_MAX_DETAILS]:
        loc = list(err.get("loc", ()))
        message = str(err.get("msg", "invalid"))
        if err.get("type") == "json_invalid":  # loc is ("body", character offset)
            reason = (err.get("ctx") or {}).get("error")
            message = f"invalid JSON at character {loc[-1]}" + (f": {reason}" if reason else "")
            loc = loc[:1]
        details.append({"loc": ".".join(str(p) for p in loc), "message": message})
    first = details[0] if details else {"loc": "", "message": "invalid request"}
    message = f"{first['loc']}: {first['message']}" if first["loc"] else first["message"]
    return error_response(422, "validation_error", message, details=details)


async def http_error_handler(request: Any, exc: StarletteHTTPException) -> Any:
    """What the framework raises itself: unknown route, wrong method, unreadable body."""
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return error_response(
        exc.status_code,
        _STATUS_TYPES.get(exc.status_code, "http_error"),
        message,
        headers=getattr(exc, "headers", None),
    )


async def unhandled_error_handler(request: Any, exc: Exception) -> Any:
    """A bug: log it with its traceback, answer 500 without internals."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal server error (logged on the server)")


class UnhandledErrorMiddleware:
    """Answer a bug with the 500 error shape and keep the connection serving.

    Starlette's outermost ``ServerErrorMiddleware`` sends the 500 and then re-raises the
    exception, so that the server can log it; uvicorn, seeing an exception after a complete
    response, closes the connection, and a keep-alive client's next request on it is reset.
    This middleware sits just outside the routing: it logs the bug with its traceback,
    sends the same 500 body, and returns normally. (A bug after the response has started
    cannot be answered; the connection is then closed, as it must be.)
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error("unhandled error on %s %s", scope.get("method"), scope.get("path"), exc_info=exc)
            if started:
                raise
            response = error_response(500, "internal_error", "internal server error (logged on the server)")
            await response(scope, receive, send)


def install_error_handlers(app: Any) -> None:
    from fastapi.exceptions import RequestValidationError

    app.add_exception_handler(AdcoreError, adcore_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(Exception, unhandled_error_handler)
