"""adcore-sklearn: scikit-learn's novelty detectors as adcore algorithms (``sklearn:iforest``...).

Factories and parameter models are lazy ``"module:attr"`` references: registering and
describing import pydantic only; scikit-learn is imported when a detector is built.
"""

from __future__ import annotations

from adcore import hookimpl
from adcore.hookspecs import Register

__version__ = "0.1.0"

#: Modules that registering or describing a detector must never import (adcore.testing checks).
HEAVY_MODULES = ("sklearn", "scipy")

_DETECTORS = "adcore_sklearn.detectors"
_PARAMS = "adcore_sklearn.params"
_COMMON = {"heavy_modules": HEAVY_MODULES}


@hookimpl
def register_detectors(register: Register) -> None:
    register(
        "iforest",
        f"{_DETECTORS}:IsolationForest",
        summary="Isolation forest (scikit-learn): how few random splits isolate a row",
        params=f"{_PARAMS}:IsolationForestParams",
        tags=("sklearn", "ensemble"),
        **_COMMON,
    )
    register(
        "lof",
        f"{_DETECTORS}:LocalOutlierFactor",
        summary="Local outlier factor (scikit-learn, novelty mode): density relative to the neighbours'",
        params=f"{_PARAMS}:LocalOutlierFactorParams",
        tags=("sklearn", "proximity"),
        **_COMMON,
    )
    register(
        "ocsvm",
        f"{_DETECTORS}:OneClassSVM",
        summary="One-class SVM (scikit-learn, libsvm): distance outside a kernel boundary around the data",
        params=f"{_PARAMS}:OneClassSVMParams",
        tags=("sklearn", "kernel"),
        **_COMMON,
    )
    register(
        "sgd-ocsvm",
        f"{_DETECTORS}:SGDOneClassSVM",
        summary="One-class SVM by SGD on a Nystroem kernel approximation (scikit-learn): scales to many rows",
        params=f"{_PARAMS}:SGDOneClassSVMParams",
        tags=("sklearn", "kernel", "scalable"),
        **_COMMON,
    )
    register(
        "elliptic",
        f"{_DETECTORS}:EllipticEnvelope",
        summary="Elliptic envelope (scikit-learn): robust Mahalanobis distance under a Gaussian fit (MCD)",
        params=f"{_PARAMS}:EllipticEnvelopeParams",
        tags=("sklearn", "statistical"),
        **_COMMON,
    )
