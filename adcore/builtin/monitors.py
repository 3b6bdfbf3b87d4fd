"""The built-in monitor: events as JSON lines on the ``adcore.events`` logger."""

from __future__ import annotations

import json
import logging
from typing import Any


class LogMonitor:
    """Writes every event it records as one JSON line at INFO level.

    Logging is the one sink every deployment already collects, so this is the default;
    richer monitors (Prometheus) come from plugins or the server extra.
    """

    def __init__(self, logger: str = "adcore.events", level: int = logging.INFO) -> None:
        self.logger = logging.getLogger(logger)
        self.level = level

    def record(self, event: Any) -> None:
        payload = event.to_dict() if hasattr(event, "to_dict") else event
        self.logger.log(self.level, json.dumps(payload, default=str, separators=(",", ":")))
