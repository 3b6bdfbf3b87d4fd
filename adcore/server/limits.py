"""Request limits: body bytes (while streaming), a per-client token bucket, rows and features.

The body limit is an ASGI middleware that counts bytes as they arrive and stops at the
first chunk past the limit, so a 2 GB upload costs the server at most the limit, not
2 GB of memory; a ``Content-Length`` over the limit is refused before any byte is read.
The rate limit is a token bucket per client (peer address + key digest): ``rate``
requests per second on average, bursts of up to ``burst``, and a ``Retry-After`` that
says when the next token is due; :class:`adcore.server.guards.AccessMiddleware` takes the
tokens, for every request whatever its method or path.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from adcore.server.errors import BodyTooLarge, InvalidPayload, PayloadTooLarge


class BodySizeLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, counting bytes while streaming."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> BodyTooLarge:
        mb = self.max_bytes / (1024 * 1024)
        return BodyTooLarge(f"request body is over this server's limit of {mb:.3g} MB (--max-body-mb)")

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope.get("headers") or [])
        received = 0

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            if declared is not None and declared > self.max_bytes:
                raise self._too_large()
            message = await receive()
            if message.get("type") == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, limited_receive, send)


def _content_length(headers: Sequence[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class TokenBucketLimiter:
    """Token buckets keyed by client; thread-safe; remembers at most ``max_clients`` buckets.

    A bucket that is full again is as good as a forgotten one, so evicting the least
    recently seen client never lets anyone exceed the rate.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def acquire(self, client: str) -> float:
        """Take one token: 0.0 when granted, else the seconds until one is available."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return wait


def check_matrix(
    data: Any, feature_names: list[str] | None, *, max_rows: int, max_features: int
) -> tuple[int, int]:
    """Check a request's data matrix (already parsed) against the row and feature limits.

    Too many rows or features is 413, like a too-large body; feature names that do not
    match the width are 422. Returns the shape.
    """
    n_rows, width = (int(n) for n in data.shape)
    if n_rows > max_rows:
        raise PayloadTooLarge(f"{n_rows} rows is over this server's limit of {max_rows} (--max-rows)")
    if width > max_features:
        raise PayloadTooLarge(
            f"{width} features is over this server's limit of {max_features} (--max-features)"
        )
    if feature_names is not None and len(feature_names) != width:
        raise InvalidPayload(f"feature_names: {len(feature_names)} names for {width} features")
    return n_rows, width
