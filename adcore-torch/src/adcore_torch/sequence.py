"""The sequence autoencoder: windows of a multivariate time series in, one score per row out.

Rows are time steps in order. The network (1-D convolutions or an LSTM) learns to
reconstruct windows of ``window`` consecutive rows; a row's score is its squared
reconstruction error averaged over the windows that contain it, so a short anomalous
segment lights up the rows inside it rather than a whole window. Scoring windows start
every ``score_stride`` steps, plus one ending on the last row, so every row is covered by
about ``window / score_stride`` of them; ``stride`` thins the training windows. A series
shorter than a window is padded with copies of its last row, and only the real rows are
scored.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from adcore_torch.base import TorchDetector
from adcore_torch.networks import ConvSequenceNet, LSTMSequenceNet, upcast
from adcore_torch.params import SequenceAutoEncoderParams, TrainingParams


def window_view(series: torch.Tensor, window: int, stride: int = 1) -> torch.Tensor:
    """All windows of ``series`` (n_steps, n_features) as a view of shape (n_windows, window, n_features)."""
    return series.unfold(0, window, stride).transpose(1, 2)


def window_starts(n_steps: int, window: int, stride: int) -> np.ndarray:
    """First steps of the scoring windows: every ``stride`` steps, and one ending on the last step."""
    last = n_steps - window
    starts = np.arange(0, last + 1, min(stride, window))
    return starts if starts[-1] == last else np.append(starts, last)


def coverage(n_steps: int, window: int, stride: int = 1) -> np.ndarray:
    """How many scoring windows contain each step (with stride 1: ramps up to ``window`` and down)."""
    counts = np.zeros(n_steps + 1)
    starts = window_starts(n_steps, window, stride)
    np.add.at(counts, starts, 1.0)
    np.add.at(counts, starts + window, -1.0)
    return np.cumsum(counts)[:n_steps]


class SequenceAutoEncoder(TorchDetector):
    """Sliding-window autoencoder for time series; ``batch_size`` and the split count windows.

    The validation split is the last share of the windows (chronological), so early
    stopping is judged on later data rather than on windows overlapping the training ones.
    ``scoring_batch_size`` counts rows: each forward pass scores about
    ``scoring_batch_size // window`` windows.
    """

    params_class = SequenceAutoEncoderParams
    chronological_split = True
    cpu_score_dtype = torch.float32  # convolutions in float64 are slow; single rows have no meaning here

    def _architecture(self, params: TrainingParams, n_features: int) -> dict[str, Any]:
        assert isinstance(params, SequenceAutoEncoderParams)
        arch: dict[str, Any] = {
            "kind": params.architecture,
            "n_features": n_features,
            "window": params.window,
            "hidden_size": params.hidden_size,
            "latent_dim": params.latent_dim,
        }
        if params.architecture == "conv":
            arch["kernel_size"] = params.kernel_size
        return arch

    def _build_network(self, architecture: dict[str, Any]) -> nn.Module:
        arch = dict(architecture)
        kind = arch.pop("kind")
        return ConvSequenceNet(**arch) if kind == "conv" else LSTMSequenceNet(**arch)

    def _macs_per_item(self, module: nn.Module) -> int:
        """Convolutions and LSTMs apply their weights at every step of the window."""
        return super()._macs_per_item(module) * int(self.architecture_["window"])

    def _eval_batch_size(self, params: TrainingParams) -> int:
        assert isinstance(params, SequenceAutoEncoderParams)
        return max(1, params.scoring_batch_size // params.window)

    def _padded(self, series: torch.Tensor) -> torch.Tensor:
        window = int(self.architecture_["window"])
        missing = window - series.shape[0]
        if missing <= 0:
            return series
        return torch.cat([series, series[-1:].expand(missing, -1)], dim=0)

    def _training_items(self, series: torch.Tensor, params: TrainingParams) -> torch.Tensor:
        assert isinstance(params, SequenceAutoEncoderParams)
        return window_view(self._padded(series), params.window, params.stride)

    def _step_errors(self, module: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        """Squared error per (window, step), averaged over features: shape (batch, window)."""
        return (upcast(module(batch)) - batch).pow(2).mean(dim=2)

    def _batch_loss(self, module: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        return self._step_errors(module, batch).mean()

    def _batch_scores(self, module: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        """A window's score (used for validation): its mean step error."""
        return self._step_errors(module, batch).mean(dim=1)

    def _after_training(self, X: np.ndarray) -> None:
        """Learn the typical error at each position of a window, from the training series.

        Convolutions and LSTMs reconstruct the ends of a window worse than its middle, and
        the first and last rows of a series only ever sit at the ends, so raw errors would
        rank the series' edges as anomalous. Each position's error is divided by its
        training mean before the rows are averaged.
        """
        self.position_error_ = np.ones(int(self.architecture_["window"]))
        sums = np.zeros_like(self.position_error_)
        count = 0
        for _, errors in self._window_errors(X):
            sums += errors.sum(dim=0).double().cpu().numpy()
            count += errors.shape[0]
        self.position_error_ = np.maximum(sums / max(count, 1), 1e-12)

    def _window_errors(self, X: np.ndarray) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(window starts, step errors)`` for batches of the scoring windows of the (padded) series."""
        device = torch.device(self.device_)
        module, dtype = self._scoring_network()
        window = int(self.architecture_["window"])
        series = self._padded(self._standardised(X, device, dtype))
        windows = window_view(series, window)
        starts = torch.from_numpy(window_starts(series.shape[0], window, int(self.score_stride))).to(device)
        per_batch = max(1, int(self.scoring_batch_size) // window)
        with torch.inference_mode():
            for chunk in starts.split(per_batch):
                yield chunk, self._step_errors(module, windows.index_select(0, chunk))

    def _score(self, X: np.ndarray) -> np.ndarray:
        """Per-row scores: each step's relative error, averaged over the windows holding it."""
        device = torch.device(self.device_)
        window = int(self.architecture_["window"])
        n_steps = max(X.shape[0], window)
        offsets = torch.arange(window, device=device)
        totals = torch.zeros(n_steps, dtype=torch.float64, device=device)
        scale = torch.as_tensor(self.position_error_, device=device)
        for starts, errors in self._window_errors(X):
            rows = (starts[:, None] + offsets).reshape(-1)
            totals.index_add_(0, rows, (errors.double() / scale).reshape(-1))
        scores = totals.cpu().numpy() / coverage(n_steps, window, int(self.score_stride))
        return scores[: X.shape[0]]
