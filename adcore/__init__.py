"""adcore: plugin-based anomaly detection.

The public API is re-exported here lazily (PEP 562), so ``import adcore`` stays cheap:
it loads no plugin and no numerical library until something is used.

>>> import adcore
>>> result = adcore.detect(X, algo="core:hbos")          # doctest: +SKIP
>>> result.scores, result.labels, result.anomalies[:3]   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

from adcore.hookspecs import hookimpl, hookspec

__version__ = "0.1.0"

_LAZY = {
    "detect": "adcore.services.detect",
    "create_detector": "adcore.services.spec",
    "Detector": "adcore.domain.detector",
    "DetectorProtocol": "adcore.domain.detector",
    "Dataset": "adcore.data",
    "read_dataset": "adcore.data",
    "DetectionResult": "adcore.domain.results",
    "Anomaly": "adcore.domain.results",
    "get_host": "adcore.plugins",
    "PluginHost": "adcore.plugins",
    "list_algorithms": "adcore.services.catalog",
    "describe_algorithm": "adcore.services.catalog",
    "fit": "adcore.services.models",
    "load_model": "adcore.services.models",
    "Model": "adcore.services.models",
    "open_stream": "adcore.services.stream",
    # for plugin authors (docs/plugins.md, "API for plugin authors"): stable names, wherever
    # the implementation lives
    "resolve_reference": "adcore.plugins",
    "parse_numpydoc_params": "adcore.domain.params",
    "check_event_types": "adcore.domain.events",
}

__all__ = ["__version__", "hookimpl", "hookspec", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'adcore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
