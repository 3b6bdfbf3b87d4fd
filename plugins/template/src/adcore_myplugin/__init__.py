"""adcore-myplugin: one detector, ``myplugin:centroid``, registered the way adcore expects.

Replace ``Centroid`` with your detector. Keep this module cheap to import: adcore imports
it whenever it lists algorithms, so heavy libraries (torch, sklearn, your own numerics)
belong in the detector's module, named here as a lazy ``"module:Class"`` string.
"""

from __future__ import annotations

import adcore


@adcore.hookimpl
def register_detectors(register):
    register(
        "centroid",  # -> "myplugin:centroid", bare "centroid"
        "adcore_myplugin.detector:Centroid",  # lazy: imported only when a detector is built
        summary="Distance to the training mean, in per-feature standard deviations",
        params=[  # cheap to list; validated before any data
            {
                "name": "p",
                "type": "float",
                "default": 2.0,
                "ge": 1,
                "description": "Minkowski power (2 = Euclidean).",
            },
        ],
        tags=("statistical",),
        heavy_modules=("numpy",),  # what listing must not import (checked by adcore.testing)
        # needs=("torch",),  # optional packages: a missing one gives "pip install torch"
        # xfail_checks={"check_score_single_row": "why it cannot"},  # declared expected failures
        # slow=True,  # conformance cases get pytest.mark.slow
        # test_params={"epochs": 5},  # cheaper settings the conformance kit builds it with
        # extra={"homepage": "https://..."},  # your own metadata; any undeclared keyword is refused
    )
