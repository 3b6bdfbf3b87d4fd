"""The one place an alert leaves the process: an HTTP POST with a short timeout.

Standard library only (``urllib.request``), so the core gains no dependency. A failure of
any kind becomes one :class:`DeliveryError` naming the URL, and saying whether trying again
can help (:func:`is_transient`): a refused or reset connection, a timeout, an answer 5xx or
429 is the receiver's trouble and may pass (retried by :mod:`.sender`); any other 4xx is a
request the receiver will never take (a bad URL path, a wrong secret, a payload it refuses),
and retrying it would only repeat the refusal. One attempt per call: retries, backoff and the
circuit breaker are :mod:`.sender`'s, around whatever callable of the :data:`Send` signature
a sink was given as ``send=``.
"""

from __future__ import annotations

import http.client
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping

#: ``send(url, body, headers, timeout)``: what the sinks call to deliver one request.
Send = Callable[[str, bytes, Mapping[str, str], float], None]

#: HTTP answers worth another try: the receiver is overloaded or failing, not refusing us.
RETRYABLE_STATUS = frozenset({408, 425, 429}) | frozenset(range(500, 600))


class DeliveryError(RuntimeError):
    """An alert that could not be delivered (the message names the URL and the cause).

    ``status`` is the HTTP status when the receiver answered; ``transient`` whether the same
    request may succeed later (see the module docstring).
    """

    def __init__(self, message: str, *, status: int | None = None, transient: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient


def is_transient(exc: BaseException) -> bool:
    """Whether a failed delivery is worth retrying: a transient :class:`DeliveryError`, or an
    ``OSError`` (a refused connection, a timeout) raised by a custom ``send=``."""
    if isinstance(exc, DeliveryError):
        return exc.transient
    return isinstance(exc, (OSError, TimeoutError)) and not isinstance(exc, ssl.SSLCertVerificationError)


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> None:
    """POST ``body`` to ``url``; returns on a 2xx answer, else raises :class:`DeliveryError`."""
    from adcore.services.registry import redact_url

    request = urllib.request.Request(url, data=body, method="POST", headers=dict(headers))
    where = redact_url(url)  # a URL may carry credentials: never in a message
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # http(s) only: settings.url
            response.read()
    except urllib.error.HTTPError as exc:
        try:
            detail = exc.read(300).decode("utf-8", "replace").strip()
        except OSError:  # the receiver hung up mid-answer
            detail = ""
        raise DeliveryError(
            f"POST {where}: HTTP {exc.code} {detail}".rstrip(),
            status=exc.code,
            transient=exc.code in RETRYABLE_STATUS,
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:  # no answer, or half of one
        reason = getattr(exc, "reason", exc)
        # A certificate the receiver will keep presenting is not an outage; the rest may pass.
        transient = not isinstance(reason, ssl.SSLCertVerificationError)
        raise DeliveryError(f"POST {where}: {reason}", transient=transient) from None
