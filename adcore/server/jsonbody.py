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
from collections.abc import Callable
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from adcore.io import jsonio


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = jsonio.loads(body)
            except json.JSONDecodeError as exc:
                raise json.JSONDecodeError(_reason(exc.msg, body, exc.pos), exc.doc, exc.pos) from None
            except ValueError as exc:  # the stdlib path refusing NaN/Infinity
                raise json.JSONDecodeError(str(exc), body.decode("utf-8", "replace"), 0) from None
        return self._json


def _reason(message: str, body: bytes, pos: int) -> str:
    """Say plainly when the culprit is a NaN/Infinity literal (what numpy users send)."""
    if body[pos : pos + 9].lstrip(b"-").startswith((b"NaN", b"Infinity")):
        return "NaN and Infinity are not JSON numbers; send finite numbers only"
    return message


class StrictJSONRoute(APIRoute):
    """An ``APIRoute`` whose handler sees a :class:`StrictJSONRequest`."""

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Any:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler


class JSONBytes(Response):
    """A JSON response from a body that holds only JSON types and finite floats."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return jsonio.dumps(content)
        except ValueError:  # the stdlib encoder met a NaN the route missed: JSON has no NaN
            return jsonio.dumps(jsonio.jsonable(content))

