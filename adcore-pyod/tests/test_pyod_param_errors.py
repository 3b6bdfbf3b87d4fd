"""Out-of-range parameters and too-small data give adcore's typed errors, never a crash (issue 14).

Every PyOD detector: each value just outside a range the catalog declares (curation.py's
CONSTRAINTS, copied into catalog.json by the generator) is refused before the detector is
built, in one line naming the detector and the parameter; PyOD itself refuses the same
value, so no declared range is narrower than PyOD's own; and 1 or 2 rows, or more
neighbours than rows, end in an :class:`adcore.errors.AdcoreError` (exit 2 on the CLI).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from adcore.domain.detector import Detector
from adcore.domain.params import out_of_range_values, public_fields, validate_params
from adcore.errors import AdcoreError, DataError
from adcore.plugins import resolve_reference
from adcore.services.catalog import describe_algorithm
from adcore.testing import check_out_of_range_refused, out_of_range_cases, registered_detectors, subject_for

from adcore_pyod import catalog, curation

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as the conformance tests: tiny data, no thread contention

DETECTORS = registered_detectors("pyod")
ENTRIES = {f"pyod:{d['name']}": d for d in catalog.detectors()}
#: Wrapper settings checked by adcore.Detector itself (its message names the setting only).
WRAPPER_SETTINGS = {"contamination"}
NEIGHBOUR_COUNTS = ("n_neighbors", "n_neighbours")
#: Too few rows that PyOD scores with NaN, which adcore.Detector does not refuse (yet).
#: PyOD returns NaN training scores here instead of raising; the wrapper refuses such a fit
#: with a DataError (the test below checks that it does, through these two).
NAN_TRAINING_SCORES = {("pyod:abod", 2), ("pyod:cd", 2)}


def _rows(n: int) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 4))


def _out_of_range_cases() -> list:
    return [pytest.param(*case, id="{}-{}={!r}".format(*case)) for case in out_of_range_cases(DETECTORS)]


def _needs_missing(name: str) -> list[str]:
    return subject_for(name).missing_needs()


def _marks(name: str) -> list:
    """Skipped when the detector's packages are missing (every case here takes well under a second)."""
    missing = _needs_missing(name)
    return [pytest.mark.skip(reason=f"needs {', '.join(missing)}")] if missing else []


@pytest.mark.parametrize(("name", "param", "value"), _out_of_range_cases())
def test_out_of_range_value_is_refused_before_the_fit(name, param, value):
    message = check_out_of_range_refused(name, param, value)
    if param not in WRAPPER_SETTINGS:
        assert message.startswith(f"{name}: parameter {param!r}"), message


def _pyod_refusal_cases() -> list:
    """Each catalog-declared bound's just-outside values, per detector whose packages are installed."""
    cases = []
    for name, entry in ENTRIES.items():
        declared = {p["name"] for p in entry["params"] if set(p) & {"ge", "gt", "le", "lt", "bounds_by_type"}}
        declared |= {p["name"] for p in entry["params"] if p.get("choices") and p["name"] in _curated(entry)}
        declared -= set(curation.IGNORED_BY_PYOD.get(entry["name"], {}))
        outside = out_of_range_values(Detector(name).params_model())
        for param in sorted(declared - WRAPPER_SETTINGS):
            cases += [
                pytest.param(name, param, v, id=f"{name}-{param}={v!r}", marks=_marks(name))
                for v in outside.get(param, [])
            ]
    return cases


def _curated(entry: dict) -> set[str]:
    """Parameters whose choices come from curation.py (not from PyOD's own docstring)."""
    return set(curation.constraints(entry["name"], [p["name"] for p in entry["params"]]))


@pytest.mark.parametrize(("name", "param", "value"), _pyod_refusal_cases())
def test_pyod_itself_refuses_what_the_catalog_refuses(name, param, value):
    """No declared range is narrower than PyOD's: PyOD fails on the value just outside it too.

    Failing means raising anything, or scoring NaN or infinity (no use to anyone). A value
    PyOD accepted would be a bound to widen or remove in curation.py.
    """
    entry = ENTRIES[name]
    params = {**curation.TEST_PARAMS.get(entry["name"], {}), param: value}
    X = _rows(100)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = resolve_reference(entry["factory"])(**params)
            model.fit(X)
            scores = np.concatenate([model.decision_scores_, model.decision_function(X[:30])])
    except Exception:
        return
    assert not np.all(np.isfinite(scores)), (
        f"PyOD's {entry['class_path']} accepts {param}={value!r}, which the catalog refuses: "
        f"widen or remove the bound in curation.py"
    )


def _small_data_marks(name: str, n_rows: int) -> list:
    return _marks(name)


def _small_data_cases() -> list:
    cases = []
    for name in DETECTORS:
        cases += [
            pytest.param(name, n, {}, id=f"{name}-{n}rows", marks=_small_data_marks(name, n)) for n in (1, 2)
        ]
        fields = public_fields(Detector(name).params_model())
        cases += [
            pytest.param(name, 10, {p: 50}, id=f"{name}-{p}=50-10rows", marks=_marks(name))
            for p in NEIGHBOUR_COUNTS
            if p in fields
        ]
    return cases


@pytest.mark.parametrize(("name", "n_rows", "params"), _small_data_cases())
def test_data_too_small_is_an_adcore_error(name, n_rows, params):
    """Too few rows for the detector: adcore's typed error (exit 2), or a fit that works."""
    X = _rows(n_rows)
    detector = Detector(name, random_state=0, **{**subject_for(name).test_params, **params})
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            detector.fit(X)
            scores = detector.decision_function(X)
    except AdcoreError as exc:
        if (name, n_rows) in NAN_TRAINING_SCORES:
            assert "no finite score" in str(exc)
        return
    assert (name, n_rows) not in NAN_TRAINING_SCORES, f"{name} on {n_rows} rows: the NaN case is gone"
    assert np.all(np.isfinite(scores)), f"{name} fitted {n_rows} rows and scored {scores}"


def test_constraints_are_shown_by_algos_show():
    rows = {r["name"]: r for r in describe_algorithm("pyod:knn")["parameters"]}
    assert rows["n_neighbors"]["constraint"] == ">= 1"
    assert rows["contamination"]["constraint"] == "in (0, 0.5]"
    assert rows["method"]["constraint"] == "one of: largest, mean, median"
    schema = describe_algorithm("pyod:iforest")["schema"]["properties"]
    assert {"const": "auto", "type": "string"} in schema["max_samples"]["anyOf"]
    assert schema["n_estimators"]["minimum"] == 1


def test_every_curated_constraint_meets_a_detector():
    assert catalog.load_catalog()  # the generator refuses to write a catalog otherwise
    from adcore_pyod.generate import stale_curation

    assert stale_curation(catalog.load_catalog()) == []


def test_pca_parameters_build_without_a_pydantic_warning():
    """PyOD's PCA has ``copy``, a BaseModel attribute: no "shadows an attribute" warning, same name."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = Detector("pyod:pca").params_model()
        info = describe_algorithm("pyod:pca")
        assert validate_params("pyod:pca", model, {"copy": False}) == {"copy": False}
    assert "copy" in public_fields(model) and "copy" in info["schema"]["properties"]
    assert "copy" in [row["name"] for row in info["parameters"]]


def test_pca_listing_prints_no_warning():
    done = subprocess.run(
        [sys.executable, "-m", "adcore.cli.main", "algos", "show", "pyod:pca"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "PYTHONWARNINGS": "default"},
    )
    assert done.returncode == 0, done.stderr
    assert "shadows" not in done.stderr and "Warning" not in done.stderr, done.stderr
    assert "copy" in done.stdout


@pytest.mark.parametrize("name", ["pyod:auto-encoder", "pyod:vae"])
def test_fewer_rows_than_a_batch_is_a_data_error_naming_the_fix(name):
    """PyOD's AutoEncoder and VAE train on full batches only: 31 rows with batch_size 32 left none."""
    pytest.importorskip("torch")
    with pytest.raises(DataError, match=r"batch_size=32 rows and got 31: .*smaller batch_size"):
        Detector(name).fit(_rows(31))
    with contextlib.redirect_stdout(io.StringIO()):
        scores = Detector(name, batch_size=16, epoch_num=1).fit(_rows(31)).decision_scores_
    assert np.all(np.isfinite(scores))
