"""The one place an alert leaves the process: an HTTP POST with a short timeout.

Standard library only (``urllib.request``), so the core gains no dependency. A failure of
any kind (refused connection, timeout, non-2xx answer) becomes one :class:`DeliveryError`
naming the URL, never retried here: a stream must not stall on a dead pager. This is the
seam for retries and circuit breakers: wrap :func:`post` (the sinks take any callable of
the same signature as ``send=``).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Mapping

#: ``send(url, body, headers, timeout)``: what the sinks call to deliver one request.
Send = Callable[[str, bytes, Mapping[str, str], float], None]


class DeliveryError(RuntimeError):
    """An alert that could not be delivered (the message names the URL and the cause)."""


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> None:
    """POST ``body`` to ``url``; returns on a 2xx answer, else raises :class:`DeliveryError`."""
    from adcore.services.registry import redact_url

    request = urllib.request.Request(url, data=body, method="POST", headers=dict(headers))
    where = redact_url(url)  # a URL may carry credentials: never in a message
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # http(s) only: settings.url
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace").strip()
        raise DeliveryError(f"POST {where}: HTTP {exc.code} {detail}".rstrip()) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"POST {where}: {reason}") from None
