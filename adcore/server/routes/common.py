"""What several routes share: the state dependency, the error responses for the schema,
and turning a detection result into its JSON body."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from adcore.server.limits import check_matrix
from adcore.server.schemas import ErrorResponse
from adcore.server.state import ServerState


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error statuses, all with the one error shape."""
    return {status: {"model": ErrorResponse, "description": ERROR_TEXT[status]} for status in statuses}


ERROR_TEXT = {
    400: "The data or a parameter cannot be used; the message says why.",
    401: "Missing or wrong API key (when ADCORE_API_KEY is set).",
    404: "Unknown algorithm or model.",
    409: "A stored model whose artifact fails its checksum (never loaded).",
    413: "Body, rows or features over the server's limits.",
    422: "The request does not match the schema (NaN and infinity included).",
    429: "Rate limit: retry after the Retry-After header's seconds.",
    503: (
        "Not ready, or a service it needs (model store, job queue) is down or behind an open "
        "circuit breaker: retry after the Retry-After header's seconds; the message says which."
    ),
}
#: what any /v1 route may answer besides its own successes (auth and rate limit come from the app)
ERRORS = error_responses(400, 404, 409, 413, 422, 503)
AUTH_ERRORS = error_responses(401)
LIMITED_ERRORS = error_responses(401, 429)


def get_state(request: Request) -> ServerState:
    return request.app.state.adcore


def checked_rows(state: ServerState, body: Any, *, max_rows: int | None = None) -> None:
    """Apply the row and feature limits to ``body.data`` (already a finite, rectangular matrix)."""
    check_matrix(
        body.data,
        body.feature_names,
        max_rows=max_rows or state.settings.max_rows,
        max_features=state.settings.max_features,
    )


def result_body(result: Any) -> dict[str, Any]:
    """A DetectionResult as the API returns it (the ``DetectionResponse`` schema)."""
    body = result.to_dict()
    body["model"] = result.metadata.get("model")
    return body
