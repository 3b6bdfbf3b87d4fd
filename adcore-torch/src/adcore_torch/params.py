"""Parameter models of the deep detectors: pydantic only, so listing never imports torch.

``adcore algos show torch:autoencoder`` reads these models (through the lazy
``"adcore_torch.params:AutoEncoderParams"`` reference) to print the parameters and
their JSON Schema; the detectors validate their constructor arguments against the same
models in ``fit``. One source of truth for names, defaults, bounds and descriptions.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

PositiveInt = Annotated[int, Field(ge=1)]
DEVICE_PATTERN = r"^(auto|cpu|cuda(:\d+)?)$"


class TrainingParams(BaseModel):
    """What every deep detector shares: the optimiser, early stopping, device and output."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    epochs: int = Field(
        20, ge=1, le=100_000, description="Passes over the training data (upper bound when early stopping)."
    )
    batch_size: int = Field(256, ge=1, le=1_048_576, description="Rows (or windows) per optimiser step.")
    learning_rate: float = Field(1e-3, gt=0, le=10, description="Adam learning rate.")
    weight_decay: float = Field(
        1e-5, ge=0, le=1, description="L2 penalty on the weights (Adam weight_decay)."
    )
    validation_fraction: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="Share of the training rows held out to choose the best epoch; 0 trains on all rows "
        "and turns early stopping off.",
    )
    patience: int | None = Field(
        5,
        ge=1,
        description="Stop after this many epochs without a better validation loss; null never stops early.",
    )
    device: str = Field(
        "auto",
        pattern=DEVICE_PATTERN,
        description="auto (CUDA when available, else CPU), cpu, cuda or cuda:N.",
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="Mixed precision on CUDA: auto picks bf16 where the GPU supports it, else fp16 with a "
        "gradient scaler. The CPU trains in fp32.",
    )
    scoring_batch_size: int = Field(
        65_536,
        ge=1,
        le=16_777_216,
        description="Rows per forward pass when scoring and validating (sequence models: time steps, "
        "that is scoring_batch_size // window windows).",
    )
    random_state: int | None = Field(
        None,
        ge=0,
        description="Seed for weights, shuffling and the validation split; on the CPU the same seed gives "
        "the same scores.",
    )
    verbose: bool = Field(True, description="Show a progress bar over epochs when stderr is a terminal.")


class AutoEncoderParams(TrainingParams):
    """A fully connected autoencoder; the score is the reconstruction error.

    Smaller batches and dropout than the other detectors: with the default widths the
    network is wider than most tables, and without that noise it learns to copy its input,
    outliers included (ADBench mean ROC-AUC 0.806 -> 0.826 at batch 64 with dropout 0.2;
    docs/benchmarks.md).
    """

    batch_size: int = Field(64, ge=1, le=1_048_576, description="Rows per optimiser step.")
    hidden_sizes: tuple[PositiveInt, ...] = Field(
        (64, 32),
        min_length=1,
        description="Encoder layer widths; the last is the bottleneck, the decoder mirrors them.",
    )
    dropout: float = Field(0.2, ge=0, lt=1, description="Dropout after each hidden layer while training.")


class VAEParams(TrainingParams):
    """A variational autoencoder with a Gaussian encoder and a unit-variance Gaussian decoder."""

    hidden_sizes: tuple[PositiveInt, ...] = Field(
        (64, 32),
        min_length=1,
        description="Encoder layer widths before the latent layer; the decoder mirrors them.",
    )
    latent_dim: int = Field(8, ge=1, le=4096, description="Size of the latent code z.")
    beta: float = Field(1.0, ge=0, description="Weight of the KL term in the training loss (beta-VAE).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout after each hidden layer while training.")
    score: Literal["elbo", "reconstruction"] = Field(
        "elbo",
        description="elbo: negative ELBO at the posterior mean (reconstruction + beta * KL); "
        "reconstruction: squared error of the reconstruction from the posterior mean.",
    )


class DeepSVDDParams(TrainingParams):
    """Deep SVDD (Ruff et al., 2018), one-class objective."""

    hidden_sizes: tuple[PositiveInt, ...] = Field(
        (64, 32),
        min_length=1,
        description="Layer widths of the bias-free network; the last is the representation.",
    )
    eps: float = Field(
        0.1,
        gt=0,
        description="Centre coordinates closer to 0 than this move to +-eps (avoids a trivial solution).",
    )


class SequenceAutoEncoderParams(TrainingParams):
    """An autoencoder over sliding windows of a multivariate time series (rows in time order)."""

    window: int = Field(32, ge=2, le=100_000, description="Time steps per window.")
    stride: int = Field(1, ge=1, description="Steps between consecutive training windows.")
    score_stride: int = Field(
        4,
        ge=1,
        description="Steps between scoring windows (at most window); each row is scored in about "
        "window / score_stride windows. 1 is the finest and costs the most.",
    )
    architecture: Literal["conv", "lstm"] = Field(
        "conv",
        description="conv: 1-D convolutions with a dense bottleneck (fast); lstm: LSTM encoder-decoder.",
    )
    hidden_size: int = Field(32, ge=1, le=65_536, description="Convolution channels or LSTM units.")
    latent_dim: int = Field(16, ge=1, le=65_536, description="Size of the window's code.")
    kernel_size: int = Field(
        5, ge=1, le=1001, description="Convolution kernel width (conv only); odd keeps alignment."
    )
