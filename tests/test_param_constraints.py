"""The core's detectors: out-of-range parameters refused before the fit, too-small data typed (issue 14).

Each value just outside a declared range (``adcore.domain.params.out_of_range_values``) gives a
one-line ParameterError naming the detector and the parameter, before the detector is
built; 1 or 2 rows give an :class:`adcore.errors.AdcoreError` (exit 2 on the CLI) or a fit
with finite scores, never another exception. The plugins' own modules test theirs
(``test_sklearn_param_errors``, ``test_pyod_param_errors``, ``test_torch_param_errors``,
``test_example_param_errors``).
"""

from __future__ import annotations

import numpy as np
import pytest

from adcore.domain.detector import Detector
from adcore.domain.params import describe_fields, out_of_range_values
from adcore.errors import AdcoreError
from adcore.testing import check_out_of_range_refused, out_of_range_cases, registered_detectors

DETECTORS = registered_detectors("core")
#: Parameters a detector needs before anything else can be checked.
BASE: dict[str, dict] = {"core:ensemble": {"members": ["core:hbos", "core:mad"]}}
#: Wrapper settings adcore.Detector checks itself: its message names the setting only.
WRAPPER_SETTINGS = {"contamination"}


def _rows(n: int) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 4))


def _cases() -> list:
    cases = out_of_range_cases(DETECTORS, base=BASE)
    return [pytest.param(*case, id="{}-{}={!r}".format(*case)) for case in cases]


def test_every_core_detector_has_a_constrained_parameter():
    with_ranges = {name for name in DETECTORS if out_of_range_values(Detector(name).params_model())}
    assert with_ranges == set(DETECTORS)


@pytest.mark.parametrize(("name", "param", "value"), _cases())
def test_out_of_range_value_is_refused_before_the_fit(name, param, value):
    message = check_out_of_range_refused(name, param, value, base=BASE.get(name))
    if param not in WRAPPER_SETTINGS:
        assert message.startswith(f"{name}: parameter {param!r}"), message


@pytest.mark.parametrize("n_rows", [1, 2])
@pytest.mark.parametrize("name", DETECTORS)
def test_data_too_small_is_an_adcore_error(name, n_rows):
    X = _rows(n_rows)
    try:
        detector = Detector(name, random_state=0, **BASE.get(name, {})).fit(X)
        scores = detector.decision_function(X)
    except AdcoreError:
        return
    assert np.all(np.isfinite(scores)), f"{name} fitted {n_rows} rows and scored {scores}"


def test_constraints_are_documented_where_they_are_enforced():
    rows = {r["name"]: r for r in describe_fields(Detector("core:hbos").params_model())}
    assert rows["n_bins"]["constraint"] == "in [2, 10000]"
    assert rows["alpha"]["constraint"] == "in (0, 1]"
    assert rows["tol"]["constraint"] == ">= 0"
    rows = {r["name"]: r for r in describe_fields(Detector("core:mad").params_model())}
    assert rows["aggregate"]["constraint"] == "one of: max, mean, l2"


def test_cli_refuses_an_out_of_range_param_with_exit_2(capfd, tmp_path):
    from adcore.cli.main import run_cli

    data = tmp_path / "data.csv"
    data.write_text("a,b\n" + "\n".join(f"{i % 7},{i % 5}" for i in range(40)) + "\n")
    code = run_cli(["run", "--algo", "core:hbos", "--param", "n_bins=1", "--input", str(data)])
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert "core:hbos" in lines[0] and "'n_bins'" in lines[0] and "Traceback" not in err


def test_algos_show_prints_the_constraint_column(capfd):
    from adcore.cli.main import run_cli

    assert run_cli(["algos", "show", "core:hbos"]) == 0
    out = capfd.readouterr().out
    assert "constraint" in out and "[2, 10000]" in out
