"""The row-wise deep detectors: autoencoder, VAE and Deep SVDD.

Each says what its network is, what it minimises and what its score is; training,
scoring in batches, devices and pickling come from :class:`~adcore_torch.base.TorchDetector`.
All scores are computed on standardised features, so every feature counts on the same
scale. The sequence model is in :mod:`adcore_torch.sequence` (re-exported here, so every
registration points at this module).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from adcore_torch.base import TorchDetector
from adcore_torch.networks import AutoEncoderNet, SVDDNet, VAENet, upcast
from adcore_torch.params import AutoEncoderParams, DeepSVDDParams, TrainingParams, VAEParams
from adcore_torch.sequence import SequenceAutoEncoder

__all__ = ["VAE", "AutoEncoder", "DeepSVDD", "SequenceAutoEncoder"]


class AutoEncoder(TorchDetector):
    """Fully connected autoencoder; the score is the mean squared reconstruction error of a row.

    Trained to reconstruct the (mostly normal) training rows through a narrow bottleneck,
    it reconstructs rows unlike them badly. Parameters: see ``AutoEncoderParams``.
    """

    params_class = AutoEncoderParams

    def _architecture(self, params: TrainingParams, n_features: int) -> dict[str, Any]:
        assert isinstance(params, AutoEncoderParams)
        return {
            "n_features": n_features,
            "hidden_sizes": list(params.hidden_sizes),
            "dropout": params.dropout,
        }

    def _build_network(self, architecture: dict[str, Any]) -> nn.Module:
        return AutoEncoderNet(**architecture)

    def _batch_scores(self, module: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        return (upcast(module(batch)) - batch).pow(2).mean(dim=1)

    def _batch_loss(self, module: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        return self._batch_scores(module, batch).mean()


class VAE(TorchDetector):
    """Variational autoencoder (Kingma & Welling, 2014) with a unit-variance Gaussian decoder.

    Training minimises ``0.5 * ||x - x_hat||^2 + beta * KL(q(z|x) || N(0, I))`` per row,
    with x_hat decoded from a reparameterised sample; for ``beta=1`` that is the negative
    ELBO up to a constant. Scores are deterministic, taken at the posterior mean z = mu
    rather than averaged over samples (the same row always gets the same score):
    ``score="elbo"`` is that objective, ``"reconstruction"`` its first term only.
    """

    params_class = VAEParams

    def _architecture(self, params: TrainingParams, n_features: int) -> dict[str, Any]:
        assert isinstance(params, VAEParams)
        return {
            "n_features": n_features,
            "hidden_sizes": list(params.hidden_sizes),
            "latent_dim": params.latent_dim,
            "dropout": params.dropout,
        }

    def _build_network(self, architecture: dict[str, Any]) -> nn.Module:
        return VAENet(**architecture)

    @staticmethod
    def _kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        mu, logvar = upcast(mu), upcast(logvar)
        return -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)

    def _batch_loss(self, module: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        recon, mu, logvar = module(batch)
        error = 0.5 * (upcast(recon) - batch).pow(2).sum(dim=1)
        return (error + self.beta * self._kl(mu, logvar)).mean()

    def _batch_scores(self, module: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        assert isinstance(module, VAENet)
        mu, logvar = module.encode(batch)
        error = 0.5 * (upcast(module.decoder(mu)) - batch).pow(2).sum(dim=1)
        if self.score == "reconstruction":
            return error
        return error + self.beta * self._kl(mu, logvar)


class DeepSVDD(TorchDetector):
    """Deep SVDD, one-class objective (Ruff et al., ICML 2018).

    A bias-free network maps the training rows close to a fixed centre c; the score is
    the squared distance ``||phi(x) - c||^2``. c is the mean network output over the
    training rows after initialisation (not learned: learning it collapses to a trivial
    solution), and coordinates of c closer to 0 than ``eps`` are pushed to +-eps so
    zero weights cannot reach it. Weight decay plays the paper's regulariser.
    """

    params_class = DeepSVDDParams

    def _architecture(self, params: TrainingParams, n_features: int) -> dict[str, Any]:
        assert isinstance(params, DeepSVDDParams)
        return {"n_features": n_features, "hidden_sizes": list(params.hidden_sizes)}

    def _build_network(self, architecture: dict[str, Any]) -> nn.Module:
        return SVDDNet(**architecture)

    def _before_training(self, module: nn.Module, items: torch.Tensor, train_idx: torch.Tensor) -> None:
        module.eval()
        total = None
        with torch.inference_mode():
            for chunk in train_idx.split(int(self.scoring_batch_size)):
                out = module(items.index_select(0, chunk.to(items.device))).double().sum(dim=0)
                total = out if total is None else total + out
        assert total is not None
        center = (total / max(train_idx.numel(), 1)).float()
        near_zero = center.abs() < self.eps
        center = torch.where(near_zero & (center < 0), -self.eps, torch.where(near_zero, self.eps, center))
        self.center_ = center.cpu().numpy()
        self._center = center.clone()  # a plain tensor (not an inference tensor) usable in autograd

    def _distances(self, module: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        out = upcast(module(batch))
        center = getattr(self, "_center", None)
        if center is None or center.device != out.device or center.dtype != out.dtype:
            center = torch.as_tensor(self.center_, device=out.device).to(out.dtype)
            self._center = center
        return (out - center).pow(2).sum(dim=1)

    def _batch_loss(self, module: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        return self._distances(module, batch).mean()

    def _batch_scores(self, module: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        return self._distances(module, batch)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_center", None)  # a tensor cache; center_ (numpy) is the stored centre
        return state
