"""adcore-example: a small real plugin, registering the MaxAbs robust z-score as ``example:maxabs``.

Registration is lazy: the factory is a ``"module:Class"`` string and the parameters a
list of dicts, so ``adcore algos`` imports neither numpy nor :mod:`adcore_example.maxabs`.
"""

from __future__ import annotations

import adcore

__version__ = "0.1.0"

MAXABS_PARAMS = [
    {
        "name": "epsilon",
        "type": "float",
        "default": 1e-12,
        "gt": 0,
        "description": "Added to each feature's MAD so constant features never divide by zero.",
    },
    {
        "name": "scale",
        "type": "bool",
        "default": True,
        "description": "Multiply the MAD by 1.4826 so scores are in standard deviations for normal data.",
    },
]


@adcore.hookimpl
def register_detectors(register):
    register(
        "maxabs",
        "adcore_example.maxabs:MaxAbs",
        summary="Largest robust z-score over the features: max |x - median| / MAD",
        params=MAXABS_PARAMS,
        tags=("statistical", "fast"),
        heavy_modules=("numpy", "adcore_example.maxabs"),
    )
