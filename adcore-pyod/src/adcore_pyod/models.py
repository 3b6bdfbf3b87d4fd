"""PyOD's model modules, imported with their numba kernels cached on disk.

adcore-pyod registers each detector by the lazy reference ``"adcore_pyod.models:hbos.HBOS"``
rather than ``"pyod.models.hbos:HBOS"``: resolving it imports ``pyod.models.hbos`` exactly
as before and returns PyOD's own class (so scores, pickles and ``type()`` are PyOD's), but
first turns on numba's on-disk cache for the kernels that import brought in
(:mod:`adcore_pyod.compile_cache`). This is the one moment adcore-pyod runs between
PyOD's import and the first fit, without the core knowing about numba.

Nothing is imported until an attribute is asked for, so registration stays cheap.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: Where the registered references point: ``<this module>:<pyod model module>.<class>``.
PREFIX = __name__ + ":"


def reference(factory: str) -> str:
    """``"pyod.models.hbos:HBOS"`` -> ``"adcore_pyod.models:hbos.HBOS"``; any other reference as is."""
    module, colon, attr = factory.partition(":")
    parent, _, leaf = module.rpartition(".")
    if parent != "pyod.models" or not colon or not leaf:
        return factory
    return f"{PREFIX}{leaf}.{attr}"


def __getattr__(name: str) -> ModuleType:
    """``models.hbos`` is ``pyod.models.hbos``, imported now, with its kernels' cache enabled."""
    if name.startswith("_") or not name.isidentifier():  # dunder probes (copy, pickle, inspect)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    target = f"pyod.models.{name}"
    try:
        module = importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name == target:  # no such PyOD model; a missing PyOD (or torch...) propagates
            raise AttributeError(f"PyOD has no module {target!r}") from exc
        raise
    from adcore_pyod.compile_cache import enable_for_loaded

    enable_for_loaded("pyod")
    globals()[name] = module  # later lookups (every refit of a stream) skip this function
    return module
