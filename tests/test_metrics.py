from __future__ import annotations

import numpy as np
import pytest

from adcore.domain.metrics import average_precision, roc_auc
from adcore.errors import DataError


def test_by_hand():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8])
    assert roc_auc(y, s) == pytest.approx(0.75)  # 3 of 4 anomaly/normal pairs ordered right
    # ranks: 0.8 (1) -> P=1, 0.4 (0), 0.35 (1) -> P=2/3 ; AP = (1 + 2/3) / 2
    assert average_precision(y, s) == pytest.approx((1 + 2 / 3) / 2)


def test_ties_count_half():
    assert roc_auc([0, 1], [0.5, 0.5]) == 0.5


def test_matches_sklearn_on_random_data():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = (rng.random(300) < 0.1).astype(int)
        y[0], y[1] = 0, 1
        s = np.round(rng.normal(size=300) + y, 1)  # rounding makes ties
        assert roc_auc(y, s) == pytest.approx(sklearn_metrics.roc_auc_score(y, s), abs=1e-12)
        assert average_precision(y, s) == pytest.approx(
            sklearn_metrics.average_precision_score(y, s), abs=1e-12
        )


def test_errors():
    with pytest.raises(DataError, match="both"):
        roc_auc([0, 0], [1, 2])
    with pytest.raises(DataError, match=r"0 .normal. or 1"):
        roc_auc([0, 2], [1, 2])
    with pytest.raises(DataError, match="labels for"):
        average_precision([0, 1, 1], [1, 2])
