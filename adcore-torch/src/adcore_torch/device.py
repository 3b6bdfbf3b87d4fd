"""Where the tensors live and how they are computed: device, mixed precision, CPU threads.

Kept in one place so every detector makes the same choices: ``auto`` means CUDA when
there is one; mixed precision is a CUDA-only speed-up (the CPU computes in fp32, which
is what makes seeded CPU runs reproducible); the thread count follows the CPUs this
process may actually use, not the host's, unless the user chose it.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from adcore.errors import ParameterError

_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_threads_configured = False


def resolve_device(requested: str) -> torch.device:
    """The device to train on: ``auto`` -> CUDA when available; ``cuda`` without CUDA is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ParameterError(
                f"device={requested!r} but CUDA is not available to this torch "
                f"({torch.__version__}); use device=cpu or device=auto"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ParameterError(
                f"device={requested!r} but only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
    return device


def load_device(saved: str) -> torch.device:
    """The device to put a loaded model on: where it was trained, or the CPU when that is gone.

    A model trained on a GPU must load on a laptop without one; scoring there is slower
    but gives the same ranking, so a warning beats a refusal.
    """
    device = torch.device(saved)
    if device.type == "cuda" and (
        not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()
    ):
        warnings.warn(
            f"this model was trained on {saved}, which is not available here; scoring on the CPU",
            RuntimeWarning,
            stacklevel=3,
        )
        return torch.device("cpu")
    return device


@dataclass(frozen=True)
class Precision:
    """How forward passes are computed: an autocast dtype (or none) and whether to scale gradients."""

    name: str
    dtype: torch.dtype | None
    scale_gradients: bool

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager[object]:
        """``torch.autocast`` for mixed precision, or nothing for fp32."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.dtype)


def resolve_precision(requested: str, device: torch.device) -> Precision:
    """fp32 on the CPU; on CUDA bf16 when supported (no scaler needed), else fp16 with GradScaler."""
    if device.type != "cuda" or requested == "fp32":
        return Precision("fp32", None, False)
    if requested == "auto":
        requested = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if requested == "bf16":
        return Precision("bf16", torch.bfloat16, False)
    return Precision("fp16", torch.float16, True)


def available_cpus() -> int:
    """CPUs this process may run on (cgroup/affinity aware where the OS says so)."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return max(os.cpu_count() or 1, 1)


def configure_threads() -> int:
    """Cap torch's intra-op threads at the CPUs available, once per process; return the count.

    torch sizes its pool from the host's cores, which oversubscribes a container or a
    ``taskset`` slice (2 usable CPUs on a 64-core host runs 32 threads on 2 cores, several
    times slower). Only lowered, never raised; left alone when the user set
    ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``.
    """
    global _threads_configured
    if _threads_configured or any(os.environ.get(name) for name in _THREAD_ENV):
        return torch.get_num_threads()
    _threads_configured = True
    cpus = available_cpus()
    if torch.get_num_threads() > cpus:
        torch.set_num_threads(cpus)
    return torch.get_num_threads()


#: Multiply-accumulates per optimiser step below which training runs on one thread.
SMALL_STEP_MACS = 1 << 24


def training_threads(macs_per_step: int) -> int:
    """Threads for a training loop: one for small steps, else the configured count.

    An MLP step on a 256-row batch is ~50 tiny kernels of well under a millisecond; each
    intra-op parallel region costs a fork/join, and when another process holds a core the
    OpenMP workers spin on a descheduled peer. Measured on a 2-CPU VM with a neighbour busy:
    7 ms per step on one thread, 150 ms on two. Large steps (sequence models, wide nets,
    big batches) keep every thread. ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` win over this.
    """
    configured = configure_threads()
    if any(os.environ.get(name) for name in _THREAD_ENV):
        return configured
    return 1 if macs_per_step < SMALL_STEP_MACS else configured


@contextlib.contextmanager
def cpu_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` intra-op threads, restoring the previous count after."""
    previous = torch.get_num_threads()
    if n != previous:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


@contextlib.contextmanager
def seeded(random_state: int | None, device: torch.device) -> Iterator[torch.Generator | None]:
    """Seed torch for one fit without touching the caller's random state.

    Yields a ``torch.Generator`` for shuffling (``None`` unseeded). The global RNGs (weight
    initialisation, dropout, the VAE's noise) are forked, seeded, and restored on exit;
    on the CPU deterministic algorithms are switched on for the duration. On CUDA runs are
    seeded but not bit-reproducible (that needs ``CUBLAS_WORKSPACE_CONFIG`` and slower kernels).
    """
    if random_state is None:
        yield None
        return
    devices = [device.index or 0] if device.type == "cuda" else []
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(random_state)
        if device.type == "cpu":
            torch.use_deterministic_algorithms(True)
        try:
            generator = torch.Generator()
            generator.manual_seed(random_state)
            yield generator
        finally:
            torch.use_deterministic_algorithms(previous, warn_only=previous_warn_only)
