"""adcore's conformance kit, one case per (detector, check), on the kit's small data."""

from __future__ import annotations

import torch_support  # noqa: F401 - one CPU thread for the fits (and the CLI's subprocesses)
from adcore.testing import parametrize_with_checks, registered_detectors

DETECTORS = registered_detectors("torch")


def test_every_detector_is_checked() -> None:
    assert DETECTORS == ["torch:autoencoder", "torch:deepsvdd", "torch:seq-autoencoder", "torch:vae"]


# On the CPU even where CUDA exists: the kit checks bit-for-bit seeded determinism, which
# CUDA kernels do not promise (test_torch_gpu.py covers CUDA).
@parametrize_with_checks(DETECTORS, params={"verbose": False, "device": "cpu"})
def test_conformance(subject, check) -> None:
    check(subject)
