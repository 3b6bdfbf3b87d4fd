"""The detector spec: the rules every entry point shares (adcore.services.spec)."""

from __future__ import annotations

import numpy as np
import pytest

import adcore
from adcore.cli.main import run_cli
from adcore.errors import ParameterError, UnknownAlgorithmError
from adcore.services.spec import MAJORITY_THRESHOLD, detector_spec


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(400, 3))
    data[:8] += 6.0
    return data


def test_a_single_detector_keeps_its_own_parameters_typed():
    spec = detector_spec("core:hbos", ["n_bins=12"], seed=3)
    assert spec.params == {"n_bins": 12} and not spec.is_ensemble
    detector = spec.build()
    assert detector.get_params()["n_bins"] == 12 and detector.random_state == 3


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"contamination": 0.05}, ("contamination", 0.05)),
        ({"random_state": 1}, ("seed", 1)),
        ({"threshold": "mad:2"}, ("threshold", "mad:2")),
        (["contamination=0.05"], ("contamination", 0.05)),
        (["random_state=1"], ("seed", 1)),
    ],
)
def test_wrapper_settings_given_as_parameters_are_lifted(params, expected):
    """PyOD lists contamination among its parameters; passing it used to crash with
    "got multiple values for keyword argument"."""
    spec = detector_spec("core:hbos", params)
    field, value = expected
    assert getattr(spec, field) == value
    assert field not in spec.params and "random_state" not in spec.params
    spec.build()


def test_a_setting_given_twice_with_different_values_is_refused():
    with pytest.raises(ParameterError, match="contamination is given twice"):
        detector_spec("core:hbos", ["contamination=0.05"], contamination=0.2)
    assert detector_spec("core:hbos", ["contamination=0.2"], contamination=0.2).contamination == 0.2


def test_ensemble_parameters_route_member_keys(X):
    spec = detector_spec("core:hbos,mad", ["combine=average", "hbos.n_bins=7", "core:mad.random_state=4"])
    assert spec.members == ("core:hbos", "mad")
    assert spec.params == {"combine": "average"}
    assert spec.member_params == {"core:hbos": {"n_bins": 7}, "mad": {"random_state": 4}}
    fitted = spec.build().fit(X)
    members = fitted.estimator_.members_
    assert members[0].estimator_.n_bins == 7 and members[1].random_state == 4


def test_member_keys_from_json_params_route_alike():
    text = detector_spec("core:hbos,core:mad", ["core:hbos.n_bins=7"])
    typed = detector_spec("core:hbos,core:mad", {"core:hbos.n_bins": 7})
    nested = detector_spec("core:hbos,core:mad", {"member_params": {"core:hbos": {"n_bins": 7}}})
    assert text.member_params == typed.member_params == nested.member_params == {"core:hbos": {"n_bins": 7}}


def test_member_params_naming_no_member_are_refused():
    with pytest.raises(ParameterError, match="not members"):
        detector_spec("core:hbos,core:mad", {"member_params": {"core:nope": {}}})


def test_a_vote_ensemble_labels_by_majority_unless_told_otherwise():
    assert detector_spec("core:hbos,core:mad", combine="vote").threshold == MAJORITY_THRESHOLD
    assert detector_spec("core:hbos,core:mad", {"combine": "vote"}).threshold == MAJORITY_THRESHOLD
    assert detector_spec("core:hbos,core:mad", combine="vote", threshold="mad").threshold == "mad"
    assert detector_spec("core:hbos,core:mad").threshold == "contamination"


def test_ensemble_options_on_a_single_detector_are_refused():
    with pytest.raises(ParameterError, match="--combine applies to ensembles only"):
        detector_spec("core:hbos", combine="vote")


def test_a_seed_is_drawn_only_when_asked_and_checked():
    assert detector_spec("core:hbos").seed is None
    drawn = {detector_spec("core:hbos", draw_seed=True).seed for _ in range(5)}
    assert all(isinstance(s, int) and 0 <= s < 2**31 for s in drawn) and len(drawn) > 1
    assert detector_spec("core:hbos", seed=5, draw_seed=True).seed == 5
    with pytest.raises(ParameterError, match="seed"):
        detector_spec("core:hbos", seed=-1)


def test_unknown_names_and_shadowed_parameters_fail_before_any_data():
    with pytest.raises(UnknownAlgorithmError):
        detector_spec("core:hbos,core:nope")
    with pytest.raises(ParameterError, match="'algorithm' names the detector"):
        detector_spec("core:hbos", {"algorithm": "x"})
    with pytest.raises(ParameterError, match="did you mean"):
        detector_spec("core:hbos", {"n_bin": 3}).build()


def test_to_dict_records_what_repeats_the_run():
    spec = detector_spec("core:hbos,core:mad", {"combine": "vote", "core:hbos.n_bins": 7}, seed=9)
    assert spec.to_dict() == {
        "algorithm": "core:hbos,core:mad",
        "params": {"combine": "vote"},
        "members": ["core:hbos", "core:mad"],
        "member_params": {"core:hbos": {"n_bins": 7}},
        "contamination": 0.1,
        "threshold": "fixed:0.5",
        "seed": 9,
    }


def test_the_issues_vote_ensemble_labels_alike_from_the_cli_and_python(X, tmp_path, capfd):
    """The issue's case: the same vote ensemble on the same 400 rows labelled 58 anomalies through
    `adcore run` and 40 through `adcore.detect`, because the majority rule lived in the CLI."""
    path = tmp_path / "x.csv"
    np.savetxt(path, X, delimiter=",", header="a,b,c", comments="", fmt="%.17g")
    out = tmp_path / "out.csv"
    args = ["run", "--algo", "core:hbos,core:mad", "--combine", "vote", "--seed", "0"]
    assert run_cli([*args, "--input", str(path), "--output", str(out)]) == 0
    cli_labels = np.loadtxt(out, delimiter=",", skiprows=1, usecols=1)
    python = adcore.detect(X, "core:hbos,core:mad", combine="vote", seed=0)
    assert python.threshold == 0.5
    np.testing.assert_array_equal(cli_labels, python.labels)


def test_a_detect_call_records_the_seed_it_drew(X):
    first = adcore.detect(X, "core:hbos")
    again = adcore.detect(X, "core:hbos", seed=first.seed)
    assert first.seed is not None and first.metadata["seed"] == first.seed
    np.testing.assert_array_equal(first.scores, again.scores)
