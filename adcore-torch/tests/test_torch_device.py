"""Device, precision and thread choices."""

from __future__ import annotations

import pytest
import torch

from adcore_torch import device as D


def test_auto_is_the_cpu_without_cuda(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert D.resolve_device("auto") == torch.device("cpu")
    assert D.resolve_device("cpu") == torch.device("cpu")


def test_the_cpu_always_computes_in_fp32() -> None:
    for requested in ("auto", "bf16", "fp16", "fp32"):
        precision = D.resolve_precision(requested, torch.device("cpu"))
        assert precision.dtype is None and not precision.scale_gradients


def test_cuda_precision_choices(monkeypatch) -> None:
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert (
        D.resolve_precision("auto", cuda).name == "fp16" and D.resolve_precision("auto", cuda).scale_gradients
    )
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    auto = D.resolve_precision("auto", cuda)
    assert auto.dtype == torch.bfloat16 and not auto.scale_gradients
    assert D.resolve_precision("fp32", cuda).dtype is None


@pytest.fixture
def threads(monkeypatch):
    """Run with the thread policy active (no OMP_NUM_THREADS) and restore torch's count after."""
    previous = torch.get_num_threads()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(D, "_threads_configured", False)
    yield
    torch.set_num_threads(previous)


def test_threads_are_capped_at_the_cpus_available(threads, monkeypatch) -> None:
    torch.set_num_threads(8)
    monkeypatch.setattr(D, "available_cpus", lambda: 2)
    assert D.configure_threads() == 2
    torch.set_num_threads(1)
    monkeypatch.setattr(D, "_threads_configured", False)
    assert D.configure_threads() == 1  # never raised


def test_explicit_thread_settings_are_left_alone(threads, monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    torch.set_num_threads(3)
    monkeypatch.setattr(D, "available_cpus", lambda: 2)
    assert D.configure_threads() == 3
    assert D.training_threads(10) == 3


def test_small_training_steps_run_on_one_thread(threads, monkeypatch) -> None:
    torch.set_num_threads(2)
    monkeypatch.setattr(D, "available_cpus", lambda: 2)
    assert D.training_threads(256 * 7_000) == 1
    assert D.training_threads(D.SMALL_STEP_MACS) == 2
    with D.cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
