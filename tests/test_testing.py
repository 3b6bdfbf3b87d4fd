"""The conformance kit catches what it promises to, names the check and the fix, and honours metadata."""

from __future__ import annotations

import unittest

import numpy as np
import pytest

from adcore import testing
from adcore.plugins import PluginHost, set_host
from adcore.testing import CHECKS, check_detector, parametrize_with_checks, roc_auc, subject_for


class Good:
    """Distance to the training mean: passes every check."""

    def __init__(self, random_state: int | None = None) -> None:
        self.random_state = random_state

    def fit(self, X, y=None):
        self.mean_ = X.mean(axis=0)
        return self

    def decision_function(self, X):
        return np.linalg.norm(X - self.mean_, axis=1)


class Inverted(Good):
    def decision_function(self, X):
        return -super().decision_function(X)


class Unseeded(Good):
    def fit(self, X, y=None):
        super().fit(X)
        self.noise_ = np.random.default_rng().normal(size=X.shape[1]) * 1e-3
        return self

    def decision_function(self, X):
        return np.linalg.norm(X - self.mean_ - self.noise_, axis=1)


class Unpicklable(Good):
    def fit(self, X, y=None):
        super().fit(X)
        self.transform_ = lambda Z: Z - self.mean_
        return self


class BatchDependent(Good):
    def decision_function(self, X):
        return np.linalg.norm(X - X.mean(axis=0), axis=1)


class NanScores(Good):
    def decision_function(self, X):
        out = super().decision_function(X)
        out[0] = np.nan
        return out


class Trained(Good):
    """Takes a training length, as deep models do; records every fit."""

    fits: list[int] = []

    def __init__(self, epochs: int = 100, random_state: int | None = None) -> None:
        super().__init__(random_state)
        self.epochs = epochs

    def fit(self, X, y=None):
        Trained.fits.append(self.epochs)
        return super().fit(X)


class Counted(Trained):
    """Trained under a name of its own (the kit caches fits per detector)."""


@pytest.mark.parametrize(
    ("factory", "check", "message"),
    [
        (Inverted, "check_orientation", "higher must mean more anomalous"),
        (Unseeded, "check_seed_determinism", "use it for every random source"),
        (Unpicklable, "check_pickle_round_trip", "no lambdas"),
        (BatchDependent, "check_score_single_row", "depends on the other rows"),
        (NanScores, "check_fit_shapes_and_finite", "no finite score (NaN or infinity)"),
    ],
)
def test_a_broken_detector_fails_naming_detector_check_and_fix(factory, check, message):
    with pytest.raises(AssertionError) as info:
        check_detector(factory)
    text = str(info.value)
    assert factory.__qualname__ in text and check in text and "how to fix:" in text
    assert message in text


def test_a_good_detector_passes_every_check():
    report = check_detector(Good)
    assert report == {c.__name__: "passed" for c in CHECKS}


def test_roc_auc_matches_the_definition():
    y = np.array([0, 0, 1, 1, 0])
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.4])
    pairs = [(p, n) for p in s[y == 1] for n in s[y == 0]]
    expected = np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs])
    assert roc_auc(y, s) == pytest.approx(expected)


PLUGIN = """
import adcore
@adcore.hookimpl
def register_detectors(register):
    register("inverted", "{module}:Inverted",
             xfail_checks={{"check_orientation": "known", "check_score_new_data": "same"}})
    register("slowpoke", "{module}:Good", slow=True)
    register("needy", "{module}:Good", needs=("adcore-no-such-package",))
    register("quick", "{module}:Trained", test_params={{"epochs": 2}})
    register("misdeclared", "{module}:Trained", test_params={{"epoch": 2}})
"""


@pytest.fixture
def host_with_metadata():
    import types

    plugin = types.ModuleType("meta_plugin")
    exec(PLUGIN.format(module=__name__), plugin.__dict__)
    host = PluginHost(autoload=False)
    host.load()
    host.add_plugin(plugin, "meta")
    set_host(host)
    yield host
    set_host(None)


def test_xfail_checks_from_the_registration_are_not_run(host_with_metadata):
    report = check_detector(
        "meta:inverted", checks=["check_orientation", "check_score_new_data", "check_pickle_round_trip"]
    )
    assert report == {
        "check_orientation": "expected failure: known",
        "check_score_new_data": "expected failure: same",
        "check_pickle_round_trip": "passed",
    }


def test_missing_needs_skip(host_with_metadata):
    with pytest.raises(unittest.SkipTest, match="pip install adcore-no-such-package"):
        check_detector("meta:needy")


def test_parametrize_gives_readable_ids_and_marks(host_with_metadata):
    mark = parametrize_with_checks(["meta:inverted", "meta:slowpoke", "meta:needy"])
    cases = {p.id: p for p in mark.args[1]}
    assert len(cases) == 3 * len(CHECKS)
    assert "meta:inverted-check_orientation" in cases
    names = lambda case: [m.name for m in case.marks]  # noqa: E731
    assert names(cases["meta:inverted-check_orientation"]) == ["xfail"]
    assert names(cases["meta:inverted-check_bad_input"]) == []
    assert names(cases["meta:slowpoke-check_bad_input"]) == ["slow"]
    assert names(cases["meta:needy-check_bad_input"]) == ["skip"]


def test_params_are_passed_and_shown_in_the_label():
    subject = subject_for(Good, {"random_state": 5})
    assert subject.label == "Good(random_state=5)"
    assert subject.build().get_params()["random_state"] == 5


def test_the_data_is_a_clear_case():
    assert testing.TRAIN.X.shape == (200, 4) and testing.TRAIN.y.sum() == 10
    assert roc_auc(testing.TRAIN.y, np.linalg.norm(testing.TRAIN.X, axis=1)) == 1.0


def test_test_params_from_the_registration_build_the_detector(host_with_metadata):
    subject = subject_for("meta:quick")
    assert subject.label == "meta:quick"  # case ids do not change
    assert subject.build().fit(testing.TRAIN.X).estimator_.epochs == 2
    assert subject_for("meta:quick", {"epochs": 3}).build().fit(testing.TRAIN.X).estimator_.epochs == 3
    defaults = subject_for("meta:quick", test_params=False)
    assert defaults.label == "meta:quick" and not defaults.test_params
    assert defaults.build().fit(testing.TRAIN.X).estimator_.epochs == 100
    in_process = [c.__name__ for c in CHECKS if c.__name__ != "check_registration_is_lazy"]
    del Trained.fits[:]
    assert check_detector("meta:quick", checks=in_process) == dict.fromkeys(in_process, "passed")
    assert set(Trained.fits) == {2}
    ids = [p.id for p in parametrize_with_checks(["meta:quick"], test_params=False).args[1]]
    assert ids == [p.id for p in parametrize_with_checks(["meta:quick"]).args[1]]


def test_test_params_must_name_declared_parameters_and_failures_show_them(host_with_metadata):
    with pytest.raises(AssertionError) as info:
        check_detector("meta:misdeclared", checks=["check_params_schema"])
    text = str(info.value)
    assert "'epoch'" in text and "test_params {'epoch': 2}" in text
    assert check_detector("meta:misdeclared", checks=["check_params_schema"], test_params=False)


def test_a_full_run_fits_twice_seed_and_clone_checks_share_the_second_fit():
    del Trained.fits[:]
    check_detector(Counted)
    assert len(Trained.fits) == 2  # the reference, and one fit for seed determinism and clone


@pytest.mark.parametrize("check", ["check_seed_determinism", "check_clone_round_trip"])
def test_the_shared_second_fit_still_catches_an_unseeded_detector(check):
    with pytest.raises(AssertionError, match=check):
        check_detector(Unseeded, checks=[check])


# --------------------------------------------------------------------------- scikit-learn's checks
SKLEARN_PLUGIN = """
import adcore
@adcore.hookimpl
def register_detectors(register):
    register("batchy", "{module}:BatchDependent",
             xfail_checks={{"check_methods_subset_invariance": "scores a batch against itself",
                           "check_score_single_row": "same"}})
    register("batchy-undeclared", "{module}:BatchDependent")
    register("slowpoke", "{module}:Good", slow=True)
    register("needy", "{module}:Good", needs=("adcore-no-such-package",))
"""


@pytest.fixture
def sklearn_host():
    pytest.importorskip("sklearn")
    import types

    plugin = types.ModuleType("sk_plugin")
    exec(SKLEARN_PLUGIN.format(module=__name__), plugin.__dict__)
    host = PluginHost(autoload=False)
    host.load()
    host.add_plugin(plugin, "sk")
    set_host(host)
    yield host
    set_host(None)


def test_sklearn_checks_run_on_a_good_detector_and_leave_out_the_excluded_ones():
    pytest.importorskip("sklearn")
    report = testing.check_sklearn_estimator(Good)
    assert "check_fit2d_predict1d" in report and "check_outliers_train" not in report
    assert all(v == "passed" or v.startswith("skipped:") for v in report.values()), report
    assert set(testing.SKLEARN_EXCLUDED) >= {"check_outliers_train", "check_outliers_fit_predict"}
    assert all(reason for reason in testing.SKLEARN_EXCLUDED.values())


def test_a_failing_sklearn_check_names_detector_and_check(sklearn_host):
    with pytest.raises(AssertionError) as info:
        testing.check_sklearn_estimator("sk:batchy-undeclared")
    text = str(info.value)
    assert "sk:batchy-undeclared failed check_methods_subset_invariance" in text
    report = testing.check_sklearn_estimator("sk:batchy")  # declared: not run, reason reported
    assert report["check_methods_subset_invariance"] == "expected failure: scores a batch against itself"


def test_sklearn_parametrize_marks_from_the_registration(sklearn_host):
    mark = testing.parametrize_with_sklearn_checks(["sk:batchy", "sk:slowpoke", "sk:needy"])
    assert mark.args[0] == ("estimator", "check")
    cases = {p.id: p for p in mark.args[1]}
    names = lambda case: [m.name for m in case.marks]  # noqa: E731
    xfail = cases["sk:batchy-check_methods_subset_invariance"]
    assert names(xfail) == ["xfail"] and xfail.marks[0].kwargs["strict"] is False
    assert names(cases["sk:batchy-check_fit1d"]) == []
    assert names(cases["sk:slowpoke-check_estimators_pickle(readonly_memmap=True)"]) == ["slow"]
    assert names(cases["sk:needy-check_fit1d"]) == ["skip"]
    estimator, check = cases["sk:batchy-check_fit1d"].values
    check(estimator)  # a case runs as scikit-learn's own do


def test_sklearn_parametrize_without_sklearn_is_one_skipped_case(monkeypatch):
    monkeypatch.setattr(testing, "_importable_module", lambda name: False)
    (case,) = testing.parametrize_with_sklearn_checks(["core:hbos"]).args[1]
    assert [m.name for m in case.marks] == ["skip"] and "scikit-learn" in case.marks[0].kwargs["reason"]
