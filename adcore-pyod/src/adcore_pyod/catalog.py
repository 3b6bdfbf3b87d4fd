"""The shipped catalog of PyOD detectors (``catalog.json``), read without importing PyOD.

Listing algorithms must stay cheap, so registration reads this JSON (generated from the
installed PyOD by :mod:`adcore_pyod.generate`) instead of walking ``pyod.models``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

CATALOG_FILE = Path(__file__).with_name("catalog.json")


@lru_cache(maxsize=1)
def load_catalog() -> dict[str, Any]:
    """The parsed catalog: ``pyod_version``, ``detectors`` (registered) and ``excluded``."""
    return json.loads(CATALOG_FILE.read_text(encoding="utf-8"))


def detectors() -> list[dict[str, Any]]:
    """One dict per registered detector: name, factory, summary, needs, params, ..."""
    return list(load_catalog()["detectors"])
