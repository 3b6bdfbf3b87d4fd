"""CUDA: mixed-precision training, and a GPU-trained model scoring on a CPU-only machine.

Skipped without a CUDA device; on a GPU machine: ``pytest adcore-torch/tests/test_torch_gpu.py``.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch_support import FAST, make_rows

from adcore_torch.detectors import VAE, AutoEncoder, DeepSVDD, SequenceAutoEncoder

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("cls", [AutoEncoder, VAE, DeepSVDD, SequenceAutoEncoder], ids=lambda c: c.__name__)
@pytest.mark.parametrize("precision", ["auto", "fp16", "fp32"])
def test_trains_on_cuda_and_loads_on_the_cpu(cls, precision, monkeypatch) -> None:
    rows = make_rows()
    X = rows[0]
    detector = cls(device="cuda", precision=precision, random_state=0, **{**FAST, "epochs": 10}).fit(X)
    assert detector.device_.startswith("cuda")
    assert all(p.device.type == "cuda" for p in detector.module_.parameters())
    expected = {
        "auto": ("bf16" if torch.cuda.is_bf16_supported() else "fp16"),
        "fp16": "fp16",
        "fp32": "fp32",
    }
    assert detector.history_["precision"] == expected[precision]
    scores = detector.decision_scores_
    assert np.isfinite(scores).all()
    if cls is not SequenceAutoEncoder:
        assert scores[:10].mean() > np.median(scores)  # the shifted rows stand out

    assert b"cuda" not in detector.__getstate__()["module_state_"]  # the weights were moved to the CPU
    data = pickle.dumps(detector)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(RuntimeWarning, match="scoring on the CPU"):
        on_cpu = pickle.loads(data)
    assert on_cpu.device_ == "cpu"
    # cuDNN convolutions use TF32 by default: the sequence model's scores move more.
    rtol = 2e-2 if cls is SequenceAutoEncoder else 1e-3
    np.testing.assert_allclose(on_cpu.decision_function(X), scores, rtol=rtol, atol=1e-4)


def test_gpu_scoring_matches_cpu_scoring_of_the_same_weights() -> None:
    rows = make_rows()
    X = rows[0]
    detector = AutoEncoder(device="cuda", random_state=0, **FAST).fit(X)
    on_cpu = pickle.loads(pickle.dumps(detector))
    on_cpu.__setstate__({**on_cpu.__getstate__(), "device_": "cpu"})
    np.testing.assert_allclose(
        on_cpu.decision_function(X), detector.decision_function(X), rtol=1e-4, atol=1e-6
    )
