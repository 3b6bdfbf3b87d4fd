"""JSON for the hot path: orjson when installed (several times faster), else the stdlib.

Both sides speak UTF-8 bytes: ``loads`` takes bytes or text, ``dumps`` returns bytes, so
a line goes from the source to the sink without a decode/encode round trip. ``loads``
refuses NaN and Infinity in either case (they are not JSON); :func:`loads_lenient` accepts
them so a malformed-line report can say "feature 'x' is NaN" rather than "not JSON".
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is installed in the dev environment
    orjson = None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _std_dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _std_loads(data: bytes | str) -> Any:
    return json.loads(data, parse_constant=_refuse_constant)


loads: Callable[[bytes | str], Any]
dumps: Callable[[Any], bytes]
if orjson is not None:
    loads = orjson.loads
    dumps = orjson.dumps
    BACKEND = "orjson"
else:  # pragma: no cover
    loads = _std_loads
    dumps = _std_dumps
    BACKEND = "json"


def loads_lenient(data: bytes | str) -> Any:
    """Parse with the stdlib, accepting NaN/Infinity (only used on lines ``loads`` refused)."""
    return json.loads(data)


def finite_or_none(value: Any) -> float | None:
    """JSON has no NaN/inf: a non-finite number (or a missing one) is written as null."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: the one JSON-safe conversion every output path uses.

    numpy scalars and arrays become numbers and lists, tuples become lists, NaN and
    infinity become ``null`` (JSON has neither), mapping keys become strings, and anything
    else becomes its ``repr`` rather than failing a response or a stored record.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":  # a numpy scalar
        return jsonable(item())
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and type(value).__module__ == "numpy":  # a numpy array
        return jsonable(tolist())
    return repr(value)
