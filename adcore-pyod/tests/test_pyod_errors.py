"""What PyOD and scikit-learn refuse reaches users as a typed adcore error: exit 2 and one line.

The library's own ValueError becomes a DataError or ParameterError that names the detector
(and the parameter when the library's message quotes one); the original is its cause.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from adcore.cli.main import run_cli
from adcore.domain.detector import Detector
from adcore.errors import DataError, ParameterError

CARDIO = Path(__file__).resolve().parents[2] / "examples" / "cardio.csv"


@pytest.fixture
def rows():
    return np.random.default_rng(0).normal(size=(60, 3))


def test_too_many_neighbours_for_the_data_names_the_detector_and_the_parameter(rows):
    with pytest.raises(ParameterError) as info:
        Detector("pyod:knn", n_neighbors=100).fit(rows)
    assert str(info.value).startswith("pyod:knn: parameter 'n_neighbors': Expected n_neighbors")
    assert info.value.parameter == "n_neighbors"
    assert len(str(info.value).splitlines()) == 1 and type(info.value.__cause__) is ValueError


def test_data_too_small_for_a_default_is_a_data_error_naming_the_detector(rows):
    with pytest.raises(DataError) as info:
        Detector("pyod:knn").fit(rows[:3])  # the default n_neighbors=5, which the user never set
    assert str(info.value).startswith("pyod:knn rejected the data (3 rows): Expected n_neighbors")


def test_a_parameter_scikit_learn_refuses_names_detector_and_parameter(rows):
    with pytest.raises(ParameterError) as info:
        Detector("pyod:lof", metric="no-such-metric").fit(rows)
    assert str(info.value).startswith("pyod:lof: parameter 'metric': ")
    assert info.value.parameter == "metric" and len(str(info.value).splitlines()) == 1


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        ("n_neighbors=100000", "error: pyod:knn: parameter 'n_neighbors': Expected n_neighbors"),
        ("n_estimators=-1", "error: pyod:iforest: parameter 'n_estimators': "),
    ],
)
def test_the_cli_exits_2_with_one_line(capsys, param, expected):
    algo = "pyod:knn" if "neighbors" in param else "pyod:iforest"
    code = run_cli(["run", "--algo", algo, "--param", param, "--input", str(CARDIO)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(expected) and err.count("\n") == 1
