"""Webhook signatures: HMAC-SHA256 over the raw body, and the check a receiver makes.

The signature goes in ``X-Adcore-Signature: sha256=HEX`` (the shape GitHub uses, so existing
receivers' verification code works). It covers the raw body bytes, and the body carries the
send time (``sent_at``, Unix seconds) and a unique ``delivery`` id, also sent as the
``X-Adcore-Timestamp`` and ``X-Adcore-Delivery`` headers. A receiver checks the signature
first, then that the signed ``sent_at`` equals the header and is recent: a captured request
replayed later fails the age check, and one with a fresh timestamp header fails the
signature (the timestamp it signed is inside the body). :func:`verify` does all three.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping

SIGNATURE_HEADER = "X-Adcore-Signature"
TIMESTAMP_HEADER = "X-Adcore-Timestamp"
DELIVERY_HEADER = "X-Adcore-Delivery"
PREFIX = "sha256="
DEFAULT_TOLERANCE = 300.0


def sign(body: bytes, secret: str | bytes) -> str:
    """The ``X-Adcore-Signature`` value for ``body``: ``sha256=`` and the hex HMAC-SHA256."""
    key = secret.encode() if isinstance(secret, str) else secret
    return PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


class SignatureError(ValueError):
    """A webhook request that must be refused: bad signature, or stale or replayed."""


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secret: str | bytes,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> dict:
    """Check a received webhook request; its parsed body, or :class:`SignatureError`.

    ``headers`` is matched case-insensitively. The signature is compared in constant time;
    ``sent_at`` must equal the timestamp header and be at most ``tolerance`` seconds old
    (or ahead). Replays within the tolerance are caught by remembering ``delivery`` ids
    for that long, which is the receiver's job.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    given = lower.get(SIGNATURE_HEADER.lower(), "")
    if not hmac.compare_digest(given.encode(), sign(body, secret).encode()):
        raise SignatureError("signature does not match the body")
    payload = json.loads(body)
    stamp = lower.get(TIMESTAMP_HEADER.lower())
    if stamp is None or str(payload.get("sent_at")) != stamp:
        raise SignatureError("timestamp header does not match the signed sent_at")
    age = (time.time() if now is None else now) - float(stamp)
    if abs(age) > tolerance:
        raise SignatureError(f"request is {age:.0f} s old (tolerance {tolerance:.0f} s): replay?")
    return payload
