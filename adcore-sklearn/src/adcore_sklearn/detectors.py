"""scikit-learn's novelty detectors behind adcore's protocol: higher score = more anomalous.

scikit-learn's ``score_samples`` is higher for *normal* rows, so every detector here
returns its negative. scikit-learn is imported in ``fit`` (when a detector is built),
never when this module is imported, so listing and describing stay cheap.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class SklearnDetector:
    """Builds a scikit-learn estimator from ``params`` in ``fit``; scores ``-score_samples``.

    Constructor arguments are stored unchanged (adcore validates them first, with the
    models in :mod:`adcore_sklearn.params`); unset ones are not passed, so scikit-learn's
    own defaults apply.
    """

    def __init__(self, **params: Any) -> None:
        self.params = params

    def build(self) -> Any:
        """The unfitted scikit-learn estimator."""
        raise NotImplementedError

    def fit(self, X: np.ndarray, y: Any = None) -> SklearnDetector:
        self.estimator_ = self.build().fit(X)
        self.decision_scores_ = self.training_scores(X)
        return self

    def training_scores(self, X: np.ndarray) -> np.ndarray:
        """Scores of the training rows (what adcore reports as ``decision_scores_``)."""
        return self.decision_function(X)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return -np.asarray(self.estimator_.score_samples(X), dtype=np.float64)


class IsolationForest(SklearnDetector):
    """Isolation forest: the anomaly score of Liu et al. (2008), in (0, 1]; about 0.5 is normal."""

    def build(self) -> Any:
        from sklearn.ensemble import IsolationForest as Estimator

        return Estimator(**self.params)


class LocalOutlierFactor(SklearnDetector):
    """Local outlier factor in novelty mode, so that new rows can be scored; the score is the LOF.

    In novelty mode scikit-learn scores new rows against the training rows. For the
    training rows themselves it offers ``negative_outlier_factor_``: each row's LOF
    computed with the row left out of its own neighbourhood, which is what
    ``score_samples`` would give for that row as a new point, had it not been in the training
    set (up to the row's own small effect on its neighbours' densities). ``score_samples`` on
    the training rows would instead count each row as its own nearest neighbour, at distance
    0, and bias the LOFs low. So training scores are ``-negative_outlier_factor_``, the
    closest scikit-learn offers to novelty scores of the training rows, and new rows get
    ``-score_samples(X)``.
    """

    def build(self) -> Any:
        from sklearn.neighbors import LocalOutlierFactor as Estimator

        return Estimator(novelty=True, **self.params)

    def training_scores(self, X: np.ndarray) -> np.ndarray:
        return -np.asarray(self.estimator_.negative_outlier_factor_, dtype=np.float64)


class OneClassSVM(SklearnDetector):
    """One-class SVM (libsvm): the negated signed distance to the learnt boundary, plus its offset."""

    def build(self) -> Any:
        from sklearn.svm import OneClassSVM as Estimator

        return Estimator(**self.params)


class SGDOneClassSVM(SklearnDetector):
    """Linear one-class SVM trained by SGD on a Nystroem approximation of a kernel: linear in the rows.

    ``n_components``, ``kernel`` and ``gamma`` go to ``Nystroem``; the rest to
    ``SGDOneClassSVM``; ``random_state`` to both.
    """

    _NYSTROEM = ("n_components", "kernel", "gamma")

    def build(self) -> Any:
        from sklearn.kernel_approximation import Nystroem
        from sklearn.linear_model import SGDOneClassSVM as Estimator
        from sklearn.pipeline import Pipeline

        nystroem = {k: v for k, v in self.params.items() if k in self._NYSTROEM}
        sgd = {k: v for k, v in self.params.items() if k not in self._NYSTROEM}
        if "random_state" in self.params:
            nystroem["random_state"] = self.params["random_state"]
        return Pipeline([("nystroem", Nystroem(**nystroem)), ("sgd", Estimator(**sgd))])


class EllipticEnvelope(SklearnDetector):
    """Robust Gaussian fit (minimum covariance determinant): the squared Mahalanobis distance."""

    def build(self) -> Any:
        from sklearn.covariance import EllipticEnvelope as Estimator

        return Estimator(**self.params)
