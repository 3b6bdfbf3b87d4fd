"""Adapters for the PyOD detectors whose constructor needs something only the data can tell.

PyOD's ``DeepSVDD(n_features, ...)`` must be told the number of features when it is built,
but adcore builds a detector from its parameters before it sees data. The adapter takes
the same parameters, builds PyOD's class in ``fit`` with the data-given arguments added,
and delegates scoring, so its scores are PyOD's own.
"""

from __future__ import annotations

from typing import Any

from adcore import resolve_reference


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
