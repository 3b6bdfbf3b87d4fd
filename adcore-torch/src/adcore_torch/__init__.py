"""adcore-torch: deep anomaly detectors (PyTorch) for adcore, on the CPU and on CUDA.

This module is the plugin (entry point ``torch = "adcore_torch"``). It registers every
detector lazily, by ``"module:attr"`` reference, with its parameter model in
:mod:`adcore_torch.params` (pydantic only): ``adcore algos`` lists and describes the
detectors without importing torch, which alone takes longer than the CLI's start-up
budget. torch is imported the first time a detector is built.
"""

from __future__ import annotations

from adcore.hookspecs import Register, hookimpl

__version__ = "0.1.0"

_DETECTORS = "adcore_torch.detectors"
_PARAMS = "adcore_torch.params"
_COMMON = {"needs": ["torch"], "heavy_modules": ("torch",)}

_SEQUENCE_XFAIL = {
    "check_score_single_row": "a row is scored in the windows of its neighbours in time: "
    "alone it has no context, so its score differs from the same row inside the series",
    # scikit-learn's estimator checks (adcore.testing.sklearn_checks)
    "check_methods_subset_invariance": "a row is scored in the windows of its neighbours in time: "
    "alone it has no context",
    "check_methods_sample_order_invariance": "rows are a time series: reordering them changes every window",
}

DETECTORS = (
    (
        "autoencoder",
        "AutoEncoder",
        "AutoEncoderParams",
        "Fully connected autoencoder; score = reconstruction error of the standardised row",
        ("deep", "reconstruction"),
        {},
    ),
    (
        "vae",
        "VAE",
        "VAEParams",
        "Variational autoencoder; score = negative ELBO (or reconstruction error) at the posterior mean",
        ("deep", "reconstruction", "probabilistic"),
        {},
    ),
    (
        "deepsvdd",
        "DeepSVDD",
        "DeepSVDDParams",
        "Deep SVDD (Ruff et al. 2018); score = squared distance to the hypersphere centre",
        ("deep", "one-class"),
        {},
    ),
    (
        "seq-autoencoder",
        "SequenceAutoEncoder",
        "SequenceAutoEncoderParams",
        "Sliding-window conv/LSTM autoencoder for time series (rows in time order); one score per row",
        ("deep", "reconstruction", "time-series"),
        {"xfail_checks": _SEQUENCE_XFAIL},
    ),
)


@hookimpl
def register_detectors(register: Register) -> None:
    for name, cls, params, summary, tags, extra in DETECTORS:
        register(
            name,
            f"{_DETECTORS}:{cls}",
            params=f"{_PARAMS}:{params}",
            summary=summary,
            tags=tags,
            **_COMMON,
            **extra,
        )
