"""What every deep detector does the same way: parameters, fit, batched scoring, pickling.

A concrete detector (``adcore_torch.detectors``) supplies its parameter model, how to
build its network, the loss of a batch and the score of a batch; :class:`TorchDetector`
does the rest:

- constructor keywords stored unchanged (scikit-learn style), validated in ``fit``
  against the same pydantic model that ``adcore algos show`` prints;
- standardisation inside the model (deep nets train badly on raw, unequal scales, and a
  stored model must apply the training data's scaling to new data by itself);
- seeded, CPU-deterministic training (``device.seeded``) with the shared loop
  (``training.train``), whose per-epoch losses become ``history_``;
- scoring in large batches under ``torch.inference_mode()``, in fp32;
- pickles holding the weights as ``state_dict`` bytes, never an ``nn.Module``
  (``state.py``), loadable on a machine without the GPU the model was trained on.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np
import torch
from adcore.errors import DataError, NotFittedError, ParameterError, SchemaMismatchError
from pydantic import ValidationError
from torch import nn

from adcore_torch.device import (
    configure_threads,
    cpu_threads,
    load_device,
    resolve_device,
    resolve_precision,
    seeded,
    training_threads,
)
from adcore_torch.params import TrainingParams
from adcore_torch.state import state_from_bytes, state_to_bytes
from adcore_torch.training import TrainingConfig, split_indices, train

_MIN_SCALE = 1e-12
_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


class TorchDetector:
    """Base class of the deep detectors (not registered itself).

    Fitted attributes: ``module_`` (the network, in eval mode), ``mean_``/``scale_`` (the
    standardisation), ``history_`` (per-epoch losses and where training ran),
    ``decision_scores_`` (training scores), ``n_features_in_``, ``device_``.
    """

    params_class: ClassVar[type[TrainingParams]] = TrainingParams
    #: the validation split takes the last items instead of a random share (time series)
    chronological_split: ClassVar[bool] = False
    #: the dtype CPU scores are computed in (see ``_scoring_network``)
    cpu_score_dtype: ClassVar[torch.dtype] = torch.float64

    def __init__(self, **params: Any) -> None:
        fields = self.params_class.model_fields
        unknown = sorted(set(params) - set(fields))
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unexpected parameter(s) {', '.join(unknown)}; "
                f"parameters: {', '.join(fields)}"
            )
        for name, field in fields.items():
            setattr(self, name, params.get(name, field.default))

    # ------------------------------------------------------------ sklearn API
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Every parameter, defaults included, as given (what ``sklearn.base.clone`` rebuilds from)."""
        return {name: getattr(self, name) for name in self.params_class.model_fields}

    def set_params(self, **params: Any) -> TorchDetector:
        fields = self.params_class.model_fields
        for name, value in params.items():
            if name not in fields:
                raise ParameterError(f"{type(self).__name__} has no parameter {name!r}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {n: f.default for n, f in self.params_class.model_fields.items()}
        changed = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if v != defaults[k])
        return f"{type(self).__name__}({changed})"

    def validated_params(self) -> TrainingParams:
        """The parameters checked against the model: bad values fail before any training."""
        try:
            return self.params_class(**self.get_params())
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err.get("loc", ())) or "?"
            raise ParameterError(
                f"{type(self).__name__}: parameter {where!r}: {err.get('msg')} (got {err.get('input')!r})"
            ) from None

    # ---------------------------------------------------- what subclasses define
    def _architecture(self, params: TrainingParams, n_features: int) -> dict[str, Any]:
        """Constructor arguments of the network (stored; the network is rebuilt from them on load)."""
        raise NotImplementedError

    def _build_network(self, architecture: dict[str, Any]) -> nn.Module:
        raise NotImplementedError

    def _batch_loss(self, module: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        """Mean training loss of a batch of items (computed in fp32)."""
        raise NotImplementedError

    def _batch_scores(self, module: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        """One score per item of the batch, higher = more anomalous."""
        raise NotImplementedError

    def _training_items(self, series: torch.Tensor, params: TrainingParams) -> torch.Tensor:
        """What the network trains on: the standardised rows (sequence models: windows)."""
        return series

    def _before_training(self, module: nn.Module, items: torch.Tensor, train_idx: torch.Tensor) -> None:
        """A hook run once the network exists, before the first epoch (Deep SVDD fixes its centre)."""

    def _eval_batch_size(self, params: TrainingParams) -> int:
        """Items per forward pass when computing validation losses (bounded like scoring)."""
        return params.scoring_batch_size

    def _after_training(self, X: np.ndarray) -> None:
        """A hook run on the training rows once the network is trained, before they are scored."""

    def _macs_per_item(self, module: nn.Module) -> int:
        """Rough multiply-accumulates of one item's forward pass (an MLP: its parameter count).

        Only used to decide whether a training step is big enough to be worth several threads.
        """
        return sum(p.numel() for p in module.parameters())

    # ------------------------------------------------------------------- fit
    def fit(self, X: Any, y: Any = None) -> TorchDetector:
        """Standardise ``X`` (n_samples, n_features), train the network, score the training rows."""
        params = self.validated_params()
        X = _as_matrix(X)
        configure_threads()
        device = resolve_device(params.device)
        precision = resolve_precision(params.precision, device)
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale_ = np.where(std > _MIN_SCALE, std, 1.0)
        self.n_features_in_ = X.shape[1]
        self.architecture_ = self._architecture(params, X.shape[1])
        with seeded(params.random_state, device) as generator:
            series = self._standardised(X, device)
            items = self._training_items(series, params)
            train_idx, val_idx = split_indices(
                items.shape[0], params.validation_fraction, generator, chronological=self.chronological_split
            )
            module = self._build_network(self.architecture_).to(device)
            self._before_training(module, items, train_idx)
            config = TrainingConfig(
                epochs=params.epochs,
                batch_size=params.batch_size,
                learning_rate=params.learning_rate,
                weight_decay=params.weight_decay,
                patience=params.patience,
                eval_batch_size=self._eval_batch_size(params),
                device=device,
                precision=precision,
                generator=generator,
                verbose=params.verbose,
                description=f"{type(self).__name__} ({device.type})",
            )
            threads = torch.get_num_threads()
            if device.type == "cpu":
                threads = training_threads(params.batch_size * self._macs_per_item(module))
            with cpu_threads(threads):
                history = train(module, self._batch_loss, items, train_idx, val_idx, config)
        del series, items
        self.module_ = module
        self.device_ = str(device)
        self.history_ = history.as_dict(
            device=str(device),
            precision=precision.name,
            threads=threads if device.type == "cpu" else None,
            n_train=int(train_idx.numel()),
            n_val=int(val_idx.numel()),
        )
        self._after_training(X)
        self.decision_scores_ = self.decision_function(X)
        return self

    # --------------------------------------------------------------- scoring
    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly scores, shape (n_samples,), higher = more anomalous (see ``_scoring_network``)."""
        self._check_fitted()
        X = _as_matrix(X)
        if X.shape[1] != self.n_features_in_:
            raise SchemaMismatchError(
                f"X has {X.shape[1]} features, but the model was fitted with {self.n_features_in_}"
            )
        if X.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        configure_threads()
        return self._score(X)

    def _score(self, X: np.ndarray) -> np.ndarray:
        """Row-wise scoring, standardising and moving one batch at a time (bounded memory)."""
        device = torch.device(self.device_)
        module, dtype = self._scoring_network()
        step = int(self.scoring_batch_size)
        out = np.empty(X.shape[0], dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, X.shape[0], step):
                batch = self._standardised(X[start : start + step], device, dtype)
                out[start : start + step] = self._batch_scores(module, batch).double().cpu().numpy()
        return out

    def _scoring_network(self) -> tuple[nn.Module, torch.dtype]:
        """The network scores run through, and the dtype they run in.

        On the CPU, row-wise detectors score with a float64 copy of the network: in float32
        a row's score moves in the last bit with the size of the batch it arrives in
        (matmul kernels differ by batch size), and streaming one row at a time must give the
        batch's score exactly. It costs ~3x the float32 time in the network, far below
        reading the data. CUDA and sequence models score in float32.
        """
        if torch.device(self.device_).type != "cpu" or self.cpu_score_dtype == torch.float32:
            self.module_.eval()
            return self.module_, torch.float32
        cached = self.__dict__.get("_scoring_copy")
        if cached is None or cached[0] is not self.module_:
            cached = (self.module_, copy.deepcopy(self.module_).to(self.cpu_score_dtype).eval())
            self._scoring_copy = cached
        return cached[1], self.cpu_score_dtype

    def _standardised(
        self, X: np.ndarray, device: torch.device, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        scaled = (X - self.mean_) / self.scale_
        return torch.from_numpy(scaled.astype(_NUMPY_DTYPES[dtype], copy=False)).to(device)

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit first")

    # -------------------------------------------------------------- pickling
    def __getstate__(self) -> dict[str, Any]:
        """Everything but the network, whose weights go in as ``state_dict`` bytes (CPU tensors)."""
        state = self.__dict__.copy()
        state.pop("_scoring_copy", None)
        module = state.pop("module_", None)
        if module is not None:
            state["module_state_"] = state_to_bytes(module.state_dict())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild the network from ``architecture_`` and load its weights where they can run here."""
        state = dict(state)
        blob = state.pop("module_state_", None)
        self.__dict__.update(state)
        if blob is None:
            return
        device = load_device(state["device_"])
        module = self._build_network(self.architecture_)
        module.load_state_dict(state_from_bytes(blob, map_location=device))
        self.module_ = module.to(device).eval()
        self.device_ = str(device)


def _as_matrix(X: Any) -> np.ndarray:
    """A finite float64 matrix (the adcore wrapper has checked already; direct callers have not)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise DataError(f"expected a 2-D array (n_samples, n_features), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise DataError("X contains NaN or infinite values")
    return X
