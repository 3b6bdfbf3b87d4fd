"""Adapters for the PyOD detectors that need, at fit time, something their constructor lacks.

PyOD's ``DeepSVDD(n_features, ...)`` must be told the number of features when it is built,
but adcore builds a detector from its parameters before it sees data. PyOD's AE1SVM, ALAD,
AnoGAN, MO_GAAL and SO_GAAL take no ``random_state`` and draw from the global random state
of torch (and numpy), so two fits differ and ``--seed`` could not repeat a run. PyOD's AutoEncoder and VAE
train on full batches only, and crash (UnboundLocalError) on fewer rows than a batch. An
adapter takes the same parameters (plus ``random_state`` for the second kind), checks what
PyOD would crash on, builds PyOD's class in ``fit`` with the data-given arguments added,
after seeding the global random state as PyOD's own seeded deep detectors do, and
delegates scoring, so its scores are PyOD's own.
"""

from __future__ import annotations

import inspect
from typing import Any

from adcore import resolve_reference
from adcore.errors import DataError


class FitTimeArguments:
    """Builds ``target`` in ``fit``, adding the arguments :meth:`data_arguments` reads from ``X``."""

    target = ""  # "module:Class"

    def __init__(self, **params: Any) -> None:
        self.params = params

    def data_arguments(self, X: Any) -> dict[str, Any]:
        raise NotImplementedError

    def fit(self, X: Any, y: Any = None) -> FitTimeArguments:
        cls = resolve_reference(self.target)
        self.estimator_ = cls(**self.data_arguments(X), **self.params)
        self.estimator_.fit(X)
        self.decision_scores_ = self.estimator_.decision_scores_
        return self

    def decision_function(self, X: Any) -> Any:
        return self.estimator_.decision_function(X)


class DeepSVDD(FitTimeArguments):
    """PyOD's Deep SVDD, given ``n_features`` (the number of columns of X) at fit."""

    target = "pyod.models.deep_svdd:DeepSVDD"

    def data_arguments(self, X: Any) -> dict[str, Any]:
        return {"n_features": X.shape[1]}


def seed_global_state(seed: int) -> None:
    """Seed Python's, numpy's legacy and torch's global random state (PyOD's ``_set_seed``)."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class GlobalSeed(FitTimeArguments):
    """Builds ``target`` in ``fit`` after seeding the global random state from ``random_state``.

    ``random_state=None`` seeds nothing: exactly PyOD's class, called directly.
    """

    def __init__(self, random_state: int | None = None, **params: Any) -> None:
        super().__init__(**params)
        self.random_state = random_state

    def data_arguments(self, X: Any) -> dict[str, Any]:
        return {}

    def fit(self, X: Any, y: Any = None) -> GlobalSeed:
        if self.random_state is not None:
            seed_global_state(self.random_state)
        super().fit(X, y)
        return self


class AE1SVM(GlobalSeed):
    target = "pyod.models.ae1svm:AE1SVM"


class ALAD(GlobalSeed):
    target = "pyod.models.alad:ALAD"


class AnoGAN(GlobalSeed):
    target = "pyod.models.anogan:AnoGAN"


class MO_GAAL(GlobalSeed):
    target = "pyod.models.mo_gaal:MO_GAAL"


class SO_GAAL(GlobalSeed):
    target = "pyod.models.so_gaal:SO_GAAL"


class FullBatches(FitTimeArguments):
    """PyOD's deep detectors that train on full batches only (``DataLoader(drop_last=True)``).

    With fewer rows than ``batch_size`` no batch is left and PyOD's training fails with an
    UnboundLocalError, which adcore would report as a bug (exit 1): refuse the data first,
    saying what to change.
    """

    def data_arguments(self, X: Any) -> dict[str, Any]:
        return {}

    def fit(self, X: Any, y: Any = None) -> FullBatches:
        batch_size = self.params.get("batch_size")
        if batch_size is None:
            batch_size = inspect.signature(resolve_reference(self.target)).parameters["batch_size"].default
        if X.shape[0] < batch_size:
            name = self.target.rpartition(":")[2]
            raise DataError(
                f"PyOD's {name} trains on full batches of batch_size={batch_size} rows and got "
                f"{X.shape[0]}: pass more rows or a smaller batch_size (--param batch_size=N)"
            )
        super().fit(X, y)
        return self


class AutoEncoder(FullBatches):
    target = "pyod.models.auto_encoder:AutoEncoder"


class VAE(FullBatches):
    target = "pyod.models.vae:VAE"
