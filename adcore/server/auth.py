"""API-key authentication: ``Authorization: Bearer <ADCORE_API_KEY>`` when a key is set.

One shared key, compared in constant time (``hmac.compare_digest``), is what a service
behind a firewall or a reverse proxy needs; per-user identity belongs to that proxy.
Without a key the server binds loopback by default, and ``adcore serve`` refuses any
other address unless told ``--insecure-no-key``.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Security
from fastapi.security import HTTPBearer

from adcore.server.errors import Unauthorized


def bearer_token(request: Any) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or ``None``."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def client_identity(request: Any) -> str:
    """Who a request comes from, for the rate limit: the peer address.

    Not the key: there is one key per server, and keying on what the client sends would
    let a client mint fresh buckets (or guess keys without limit) by varying it.
    X-Forwarded-For is not trusted either (uvicorn runs without proxy headers).
    """
    return request.client.host if request.client is not None else "unknown"


def key_refusal(expected: bytes | None, request: Any) -> Unauthorized | None:
    """The 401 for a request without the right key, or ``None`` (always ``None`` without a key).

    Shared by :class:`adcore.server.guards.AccessMiddleware` (every request) and
    :func:`api_key_checker` (the routes' dependency, which also documents the scheme in OpenAPI).
    """
    if expected is None:
        return None
    token = bearer_token(request)
    if token is None:
        return Unauthorized("this server needs an API key: send 'Authorization: Bearer <ADCORE_API_KEY>'")
    if not hmac.compare_digest(token.encode(), expected):
        return Unauthorized("wrong API key")
    return None


def api_key_checker(api_key: str | None) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency that admits a request only with the right key (when one is set)."""

    scheme = HTTPBearer(auto_error=False, description="The server's ADCORE_API_KEY, when it is set.")
    expected = api_key.encode() if api_key else None

    async def require_api_key(request: Request, _credentials: Any = Security(scheme)) -> None:
        refusal = key_refusal(expected, request)
        if refusal is not None:
            raise refusal

    return require_api_key
