"""What every benchmark's JSON records about the machine it ran on, written once."""

from __future__ import annotations

import os
import platform
from typing import Any


def load_average() -> tuple[float, float, float] | None:
    """The 1/5/15-minute load averages (None where the platform has none): the figures of a
    run count only when the machine was quiet (load below 1) before it."""
    return os.getloadavg() if hasattr(os, "getloadavg") else None


def machine(load_before: Any, **extra: Any) -> dict[str, Any]:
    """Python, CPUs, platform, any ``extra`` fields, and the load averages before and after."""
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        **extra,
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }
