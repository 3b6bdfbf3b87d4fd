"""Alert settings from the environment: monitors are built without arguments.

``adcore stream --monitor NAME`` and ``adcore serve --monitor NAME`` call a monitor's factory
with no options (as for ``jsonlog`` and ``prometheus``), so the URL, secret and grouping
interval come from ``ADCORE_*`` variables; keyword arguments, for Python callers and tests,
win over them. A value that cannot be used is a :class:`~adcore.errors.ParameterError`
naming the variable, raised when the stream or server opens, before a record is read.
"""

from __future__ import annotations

import os
import urllib.parse

from adcore.errors import ParameterError

INTERVAL_ENV = "ADCORE_ALERT_INTERVAL"
TIMEOUT_ENV = "ADCORE_ALERT_TIMEOUT"
SEVERITY_ENV = "ADCORE_ALERT_SEVERITY"
GENERATOR_URL_ENV = "ADCORE_ALERT_GENERATOR_URL"
ALERTMANAGER_URL_ENV = "ADCORE_ALERTMANAGER_URL"
WEBHOOK_URL_ENV = "ADCORE_WEBHOOK_URL"
WEBHOOK_SECRET_ENV = "ADCORE_WEBHOOK_SECRET"
QUEUE_ENV = "ADCORE_ALERT_QUEUE"
FLUSH_TIMEOUT_ENV = "ADCORE_ALERT_FLUSH_TIMEOUT"

DEFAULT_TIMEOUT = 2.0
DEFAULT_SEVERITY = "warning"
DEFAULT_QUEUE = 1000
DEFAULT_FLUSH_TIMEOUT = 5.0


def number(value: float | None, env: str, default: float, *, positive: bool = False) -> float:
    """``value`` if given, else ``$env`` as a number, else ``default``."""
    if value is None:
        raw = os.environ.get(env, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ParameterError(f"{env} must be a number of seconds, got {raw!r}") from None
    if value < 0 or (positive and value == 0):
        raise ParameterError(f"{env} must be {'> 0' if positive else '>= 0'} seconds, got {value}")
    return float(value)


def count(value: int | None, env: str, default: int) -> int:
    """``value`` if given, else ``$env`` as a whole number, else ``default``; at least 1."""
    if value is None:
        raw = os.environ.get(env, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ParameterError(f"{env} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ParameterError(f"{env} must be at least 1, got {value}")
    return int(value)


def text(value: str | None, env: str, default: str | None = None) -> str | None:
    """``value`` if given, else ``$env`` if set and not blank, else ``default``."""
    if value is not None:
        return value
    return os.environ.get(env, "").strip() or default


def url(value: str | None, env: str, *, monitor: str) -> str:
    """An http(s) URL from ``value`` or ``$env``; refused when missing or of another scheme."""
    found = text(value, env)
    if not found:
        raise ParameterError(f"the {monitor} monitor needs a URL: set {env} (e.g. http://127.0.0.1:9093)")
    parts = urllib.parse.urlsplit(found)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ParameterError(f"{env} must be an http(s) URL, got {found!r}")
    return found
