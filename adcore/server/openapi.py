"""The OpenAPI document with this server's real limits written into it.

The pydantic models are declared once, before any settings exist, so their schemas
cannot know ``--max-rows`` or ``--max-features``. A client generating requests from the
schema (schemathesis, a code generator) would then send inputs the server refuses for
reasons the schema hides. :func:`with_limits` adds them: ``maxItems`` on ``data`` (rows;
``--max-explain-rows`` for explain) and on each row and ``feature_names`` (features), the
nesting limit of ``params``, and the body-size limit as ``x-max-body-bytes`` plus a
sentence on every request body (JSON Schema has no keyword for bytes).
"""

from __future__ import annotations

import copy
from typing import Any

from adcore.server.schemas import MAX_PARAMS_DEPTH
from adcore.server.settings import ServerSettings

#: request models and the setting that bounds their rows
ROW_LIMITS = {
    "DetectRequest": "max_rows",
    "FitRequest": "max_rows",
    "ScoreRequest": "max_rows",
    "ExplainRequest": "max_explain_rows",
}


def with_limits(schema: dict[str, Any], settings: ServerSettings) -> dict[str, Any]:
    """A copy of ``schema`` whose request bodies state ``settings``' limits."""
    out = copy.deepcopy(schema)
    components = out.get("components", {}).get("schemas", {})
    for name, setting in ROW_LIMITS.items():
        if name in components:
            _limit_model(components[name], getattr(settings, setting), settings.max_features)
    _describe_body_limit(out, settings.max_body_bytes)
    return out


def _limit_model(model: dict[str, Any], max_rows: int, max_features: int) -> None:
    props = model.get("properties", {})
    data = props.get("data")
    if data is not None:
        data["maxItems"] = max_rows
        data.setdefault("items", {})["maxItems"] = max_features
    for option in props.get("feature_names", {}).get("anyOf", []):
        if option.get("type") == "array":
            option["maxItems"] = max_features
    params = props.get("params")
    if params is not None:
        params["description"] = (
            f"{params.get('description', '')} Nested at most {MAX_PARAMS_DEPTH} levels deep."
        ).strip()


def _describe_body_limit(schema: dict[str, Any], max_bytes: int) -> None:
    sentence = f"The body may hold at most {max_bytes} bytes (413 above; --max-body-mb)."
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if body is not None:
                body["x-max-body-bytes"] = max_bytes
                body["description"] = f"{body.get('description', '')} {sentence}".strip()
