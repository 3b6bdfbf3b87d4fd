"""Weights in and out of a pickle: a ``state_dict`` as bytes, never a pickled ``nn.Module``.

A fitted detector is stored by the model registry as a pickle. Pickling the network
itself would record torch's private module classes (which move between releases) and
tensors bound to the GPU they were trained on. Instead the detector pickles its
architecture parameters plus the weights as ``torch.save`` bytes of CPU tensors, and
rebuilds the network on load. ``weights_only=True`` means loading runs no code from the
blob, and ``map_location`` puts the tensors on whatever device is there now.
"""

from __future__ import annotations

import io

import torch


def state_to_bytes(state: dict[str, torch.Tensor]) -> bytes:
    """``torch.save`` of the tensors, moved to the CPU first so the blob names no GPU."""
    buffer = io.BytesIO()
    torch.save({name: tensor.detach().cpu() for name, tensor in state.items()}, buffer)
    return buffer.getvalue()


def state_from_bytes(data: bytes, map_location: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """The tensors of :func:`state_to_bytes`, on ``map_location`` (tensors only: no code runs)."""
    return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
