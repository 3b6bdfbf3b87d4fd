"""JSON in and out of the routes: orjson when installed, and NaN/Infinity refused at parse.

Python's json module reads ``NaN``, ``Infinity`` and ``1e999`` as floats, which JSON does
not allow; :class:`StrictJSONRoute` parses request bodies with :func:`adcore.io.jsonio.loads`
instead (orjson, or the stdlib with those constants refused), and a refusal surfaces as
FastAPI's 422 ``json_invalid``. orjson also parses a 50,000-row body several times
faster, which is most of the server's time on large requests.

:class:`JSONBytes` is the fast way out for the big responses (scores for every row):
the route builds the body from numpy with ``tolist()`` and orjson encodes it, skipping
a per-element validation pass the route's own code already guarantees.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from adcore.io import jsonio

#: bodies larger than this are parsed in a worker thread, off the event loop
OFFLOAD_BYTES = 64 * 1024


_PARSERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _parse_limiter() -> Any:
    """At most two bodies parse at once (one limiter per event loop).

    Parsing holds the GIL: forty parsing threads (anyio's default) would leave the event
    loop, and the probes it answers, one forty-first of the interpreter.
    """
    import asyncio

    import anyio

    loop = asyncio.get_running_loop()
    limiter = _PARSERS.get(loop)
    if limiter is None:
        limiter = _PARSERS[loop] = anyio.CapacityLimiter(2)
    return limiter


class StrictJSONRequest(Request):
    """Parses the body strictly; a large body in a worker thread.

    Parsing a 1 MB body takes milliseconds to tens of them; on the event loop, 200 such
    requests at once held up every other request, liveness probes included, for seconds.
    """

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            if len(body) > OFFLOAD_BYTES:
                import anyio

                self._json = await anyio.to_thread.run_sync(self.decode, body, limiter=_parse_limiter())
            else:
                self._json = self.decode(body)
        return self._json

    @staticmethod
    def decode(body: bytes) -> Any:
        try:
            return jsonio.loads(body)
        except json.JSONDecodeError as exc:
            raise json.JSONDecodeError(_reason(exc.msg, body, exc.pos), exc.doc, exc.pos) from None
        except ValueError as exc:  # the stdlib path refusing NaN/Infinity
            raise json.JSONDecodeError(str(exc), body.decode("utf-8", "replace"), 0) from None


class MatrixJSONRequest(StrictJSONRequest):
    """For the core's data routes: a top-level ``data`` of numeric rows becomes its matrix at parse.

    The conversion is what :func:`adcore.server.schemas.parse_matrix` would otherwise do while
    validating, on the event loop; here it runs with the parse, in the worker thread for a
    large body. Rows that do not convert cleanly stay a list, for the validator to say what is
    wrong. (Plugin routes keep plain JSON: their models may expect lists.)
    """

    @staticmethod
    def decode(body: bytes) -> Any:
        parsed = StrictJSONRequest.decode(body)
        if isinstance(parsed, dict) and isinstance(parsed.get("data"), list):
            from adcore.server.schemas import numeric_rows

            parsed["data"] = numeric_rows(parsed["data"])
        return parsed


def _reason(message: str, body: bytes, pos: int) -> str:
    """Say plainly when the culprit is a NaN/Infinity literal (what numpy users send)."""
    if body[pos : pos + 9].lstrip(b"-").startswith((b"NaN", b"Infinity")):
        return "NaN and Infinity are not JSON numbers; send finite numbers only"
    return message


class StrictJSONRoute(APIRoute):
    """An ``APIRoute`` whose handler sees a :class:`StrictJSONRequest`."""

    request_class: type[StrictJSONRequest] = StrictJSONRequest

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()
        request_class = self.request_class

        async def strict_handler(request: Request) -> Any:
            return await handler(request_class(request.scope, request.receive))

        return strict_handler


class MatrixJSONRoute(StrictJSONRoute):
    """A :class:`StrictJSONRoute` for bodies with a ``data`` matrix (:class:`MatrixJSONRequest`)."""

    request_class = MatrixJSONRequest


class JSONBytes(Response):
    """A JSON response from a body that holds only JSON types and finite floats."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return jsonio.dumps(content)
        except ValueError:  # the stdlib encoder met a NaN the route missed: JSON has no NaN
            return jsonio.dumps(jsonio.jsonable(content))
