"""The neural networks, as plain ``nn.Module`` classes built from architecture parameters.

Each network is rebuilt from its constructor arguments when a model is loaded, and its
weights come from a ``state_dict``: a pickled model never holds an ``nn.Module`` (whose
pickle breaks across torch versions and drags CUDA tensors along). Losses and scores
live in the detectors; these modules only map tensors to tensors.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn


def upcast(t: torch.Tensor) -> torch.Tensor:
    """fp16/bf16 outputs of mixed precision to fp32 for losses and scores; fp32/fp64 stay as they are."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def mlp(
    sizes: Sequence[int],
    *,
    bias: bool = True,
    activation: type[nn.Module] = nn.ReLU,
    dropout: float = 0.0,
    last_activation: bool = False,
) -> nn.Sequential:
    """Linear layers ``sizes[0] -> ... -> sizes[-1]`` with an activation (and dropout) between them."""
    layers: list[nn.Module] = []
    pairs = list(itertools.pairwise(sizes))
    for i, (n_in, n_out) in enumerate(pairs):
        layers.append(nn.Linear(n_in, n_out, bias=bias))
        if i < len(pairs) - 1 or last_activation:
            layers.append(activation())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class AutoEncoderNet(nn.Module):
    """Encoder ``n_features -> hidden_sizes``; the decoder mirrors it back to ``n_features``."""

    def __init__(self, n_features: int, hidden_sizes: Sequence[int], dropout: float = 0.0) -> None:
        super().__init__()
        self.encoder = mlp([n_features, *hidden_sizes], dropout=dropout, last_activation=True)
        self.decoder = mlp([*reversed(hidden_sizes), n_features], dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class VAENet(nn.Module):
    """Gaussian encoder q(z|x) = N(mu, exp(logvar)) and a decoder giving the mean of p(x|z)."""

    def __init__(
        self, n_features: int, hidden_sizes: Sequence[int], latent_dim: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.body = mlp([n_features, *hidden_sizes], dropout=dropout, last_activation=True)
        self.mu = nn.Linear(hidden_sizes[-1], latent_dim)
        self.logvar = nn.Linear(hidden_sizes[-1], latent_dim)
        self.decoder = mlp([latent_dim, *reversed(hidden_sizes), n_features], dropout=dropout)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        # Clamped so exp() cannot overflow in fp16 on an outlier row.
        return self.mu(h), self.logvar(h).clamp(-20.0, 20.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction from a reparameterised sample, and the posterior's mu and logvar."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decoder(z), mu, logvar


class SVDDNet(nn.Module):
    """Deep SVDD's feature map: no bias terms and a linear last layer (Ruff et al., 2018, sec. 3.3).

    Biases (and bounded activations) would let the network map every input to the centre
    with all-zero weights, the "hypersphere collapse" the paper proves; leaky ReLU keeps
    gradients alive for negative pre-activations.
    """

    def __init__(self, n_features: int, hidden_sizes: Sequence[int]) -> None:
        super().__init__()
        self.net = mlp([n_features, *hidden_sizes], bias=False, activation=nn.LeakyReLU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvSequenceNet(nn.Module):
    """1-D convolutions over a window, a dense bottleneck, and convolutions back.

    Input and output are ``(batch, window, n_features)``. The dense bottleneck is what
    stops the network from copying its input: "same"-padded convolutions alone could.
    """

    def __init__(
        self, n_features: int, window: int, hidden_size: int, latent_dim: int, kernel_size: int
    ) -> None:
        super().__init__()
        k = kernel_size
        self.encoder = nn.Sequential(
            nn.Conv1d(n_features, hidden_size, k, padding="same"),
            nn.ReLU(),
            nn.Conv1d(hidden_size, hidden_size, k, padding="same"),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(hidden_size * window, latent_dim),
            nn.ReLU(),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden_size * window),
            nn.ReLU(),
            nn.Unflatten(1, (hidden_size, window)),
            nn.Conv1d(hidden_size, hidden_size, k, padding="same"),
            nn.ReLU(),
            nn.Conv1d(hidden_size, n_features, k, padding="same"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x.transpose(1, 2))).transpose(1, 2)


class LSTMSequenceNet(nn.Module):
    """LSTM encoder-decoder (Malhotra et al., 2016): the window's last state, repeated, is decoded."""

    def __init__(self, n_features: int, window: int, hidden_size: int, latent_dim: int) -> None:
        super().__init__()
        self.window = window
        self.encoder = nn.LSTM(n_features, hidden_size, batch_first=True)
        self.to_latent = nn.Linear(hidden_size, latent_dim)
        self.decoder = nn.LSTM(latent_dim, hidden_size, batch_first=True)
        self.output = nn.Linear(hidden_size, n_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.encoder(x)
        code = self.to_latent(h[-1])
        repeated = code.unsqueeze(1).expand(-1, x.shape[1], -1)
        out, _ = self.decoder(repeated)
        return self.output(out)
