"""adcore-pyod: PyOD's tabular detectors as adcore algorithms (``pyod:iforest``, ``pyod:ecod``...).

Registration reads the shipped ``catalog.json`` (see :mod:`adcore_pyod.generate`), so
``adcore algos`` imports neither PyOD nor scikit-learn. Each factory is a lazy
``"adcore_pyod.models:x.Class"`` reference: building a detector imports exactly the PyOD
module ``pyod.models.x``, turns on numba's on-disk cache for its kernels (compiled once per
machine, not per process: :mod:`adcore_pyod.compile_cache`) and calls PyOD's own class, so
scores equal PyOD's ``decision_scores_``.
"""

from __future__ import annotations

from adcore import hookimpl
from adcore.hookspecs import Register

__version__ = "0.1.0"

#: Modules that registering or describing a detector must never import (adcore.testing checks).
HEAVY_MODULES = ("pyod", "sklearn", "scipy", "numba", "torch")


@hookimpl
def register_detectors(register: Register) -> None:
    from adcore_pyod import curation, models
    from adcore_pyod.catalog import detectors

    for entry in detectors():
        needs = list(entry["needs"])
        summary = entry["summary"]
        note = curation.NOTES.get(entry["name"])
        if note:
            summary = f"{summary} [{note}]"
        register(
            entry["name"],
            models.reference(entry["factory"]),
            summary=summary,
            params=entry["params"],
            needs=tuple(needs),
            tags=tuple(t for t in ("pyod", entry.get("category")) if t),
            heavy_modules=HEAVY_MODULES,
            extra={"pyod_class": entry["class_path"]},
            **curation.extras(entry["name"], needs),
        )
