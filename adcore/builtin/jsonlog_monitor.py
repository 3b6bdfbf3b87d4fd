"""The ``jsonlog`` monitor: one structured JSON log line per event, ready for a log shipper.

The ``log`` monitor hands events to Python logging, where nothing shows until logging is
configured. This one writes straight to a stream (stderr by default, or the file named by
``ADCORE_JSONLOG_PATH``), one object per line with the fields log pipelines index on:
``ts``, ``level`` (``warning`` for anomalies and drift, else ``info``), ``logger``,
``message`` (a sentence a person can read) and ``event`` (the type), then the event's
own fields. Lines are written whole under a lock, so threads never interleave them.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import IO, Any

from adcore.io.jsonio import jsonable

PATH_ENV = "ADCORE_JSONLOG_PATH"
_WARN = frozenset({"anomaly.detected", "drift.detected", "model.refit_failed"})


def describe(event: dict[str, Any]) -> str:
    """A one-line human summary of an event dict."""
    kind = event.get("type")
    if kind == "detection.completed":
        return (
            f"scored {event.get('scored')} of {event.get('records')} records, "
            f"{event.get('anomalies')} anomalous, in {event.get('duration_ms')} ms"
        )
    if kind == "anomaly.detected":
        score, threshold = event.get("score"), event.get("threshold")
        return f"anomaly at offset {event.get('offset')}: score {score} > {threshold}"
    if kind == "drift.detected":
        where = f" in {event['feature']!r}" if event.get("feature") else ""
        return f"drift on {event.get('on')}{where} by {event.get('detector')} at offset {event.get('offset')}"
    if kind == "model.retrained":
        return f"model {event.get('model') or event.get('algorithm')} refitted ({event.get('reason')})"
    if kind == "model.refit_failed":
        return f"refit failed ({event.get('reason')}): {event.get('error')}"
    if kind == "model.saved":
        return f"saved {event.get('model')}"
    return str(kind)


class JsonLogMonitor:
    """Writes each recorded event as one JSON line (see the module docstring)."""

    def __init__(
        self, path: str | None = None, *, stream: IO[str] | None = None, logger: str = "adcore.events"
    ) -> None:
        self.logger = logger
        self._lock = threading.Lock()
        self._owned: IO[str] | None = None
        target = path if path is not None else os.environ.get(PATH_ENV) or None
        if stream is not None:
            self._stream = stream
        elif target in (None, "-"):
            self._stream = sys.stderr
        else:
            self._owned = open(target, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            self._stream = self._owned

    def record(self, event: Any) -> None:
        payload = event.to_dict() if hasattr(event, "to_dict") else dict(event)
        kind = payload.get("type")
        line = {
            "ts": payload.get("timestamp"),
            "level": "warning" if kind in _WARN else "info",
            "logger": self.logger,
            "message": describe(payload),
            "event": kind,
            **{k: v for k, v in payload.items() if k not in ("type", "timestamp")},
        }
        try:
            text = json.dumps(line, default=str, separators=(",", ":"), allow_nan=False) + "\n"
        except ValueError:  # a NaN somewhere: JSON has none, write null
            text = json.dumps(jsonable(line), default=str, separators=(",", ":")) + "\n"
        with self._lock:
            self._stream.write(text)
            if self._owned is None:
                self._stream.flush()

    def flush(self) -> None:
        with self._lock:
            self._stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._owned is not None and not self._owned.closed:
                self._owned.close()

