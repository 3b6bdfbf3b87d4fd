"""scikit-learn's estimator checks on the core's own detectors, through the conformance kit.

Every check ``sklearn.utils.estimator_checks`` runs on an outlier detector, less the few in
``adcore.testing.SKLEARN_EXCLUDED`` (scikit-learn's -1/+1 labels, and how parameters are
stored); expected failures come from the registrations' ``xfail_checks``. Without
scikit-learn installed (the core alone) the kit gives one skipped case.
"""

from __future__ import annotations

import pytest

from adcore import testing
from adcore.testing import parametrize_with_sklearn_checks, registered_detectors

CORE_DETECTORS = registered_detectors("core")
# The ensemble needs members. Two whose scores do not depend on the batch, to the bit: its
# default combination (consensus) steps at every training score, so a member that rounds a
# row differently alone than in a batch (core:mahalanobis, by one ulp) moves a re-scored
# training row a whole step (docs/sklearn-compatibility.md).
ENSEMBLE = {"members": ["core:hbos", "core:mad"]}


@parametrize_with_sklearn_checks([n for n in CORE_DETECTORS if n != "core:ensemble"])
def test_core_detector_follows_sklearn_conventions(estimator, check):
    check(estimator)


@parametrize_with_sklearn_checks(["core:ensemble"], params=ENSEMBLE)
def test_core_ensemble_follows_sklearn_conventions(estimator, check):
    check(estimator)


def test_every_core_detector_runs_every_check_but_the_excluded_ones():
    pytest.importorskip("sklearn")
    run = {testing.sklearn_check_id(check) for _, check in testing.sklearn_checks("core:hbos")}
    assert not {name for name in run if name.split("(")[0] in testing.SKLEARN_EXCLUDED}
    assert {"check_fit1d", "check_dtype_object", "check_estimators_unfitted"} <= run
    assert "check_dataframe_column_names_consistency" in run  # the one scikit-learn leaves to its own tests
