"""Conformal p-values and Benjamini-Hochberg labels (``fdr:Q``): the math, its guarantees, its surfaces.

The guarantees are checked on generated data where the truth is known: under the null
(inliers from the training distribution) ``P(p <= a) <= a``, and BH at ``Q`` keeps the realised
false-discovery rate at or under ``Q`` on average over seeds, for several detectors.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from adcore import Detector
from adcore.cli.main import run_cli
from adcore.domain.conformal import (
    _bh_numpy,
    benjamini_hochberg,
    conformal_p_values,
    jackknife_p_values,
    single_row_cut,
)
from adcore.domain.thresholds import parse_threshold
from adcore.errors import NotFittedError, ParameterError

SEEDS = range(8)


def _detectors() -> list[str]:
    """A core detector always; PyOD's and scikit-learn's when installed (not in the core env)."""
    names = ["core:hbos", "core:mahalanobis"]
    try:
        import pyod  # noqa: F401

        names.append("pyod:knn")
    except ImportError:
        pass
    try:
        import sklearn  # noqa: F401

        names.append("sklearn:iforest")
    except ImportError:
        pass
    return names


def _task(seed: int, n_train: int = 1000, n_null: int = 380, n_anom: int = 20, dim: int = 4):
    """Gaussian inliers; anomalies shifted 6 standard deviations along two random features.

    BH over ``m`` rows can reject only p-values of about ``Q k / m``, and ``n`` calibration scores
    give none below ``1 / (n + 1)``: the training set is large next to the test batch.
    """
    rng = np.random.default_rng(seed)
    train = rng.normal(size=(n_train, dim))
    null = rng.normal(size=(n_null, dim))
    anomalies = rng.normal(size=(n_anom, dim))
    for row in anomalies:
        row[rng.choice(dim, 2, replace=False)] += rng.choice([-6.0, 6.0], 2)
    test = np.vstack([null, anomalies])
    truth = np.r_[np.zeros(n_null, dtype=bool), np.ones(n_anom, dtype=bool)]
    return train, test, truth


# --------------------------------------------------------------------------- the math
def test_p_value_formula_counts_ties_and_never_reaches_zero():
    cal = np.sort(np.array([1.0, 2.0, 2.0, 3.0]))
    p = conformal_p_values(np.array([0.0, 2.0, 2.5, 3.0, 99.0, math.inf]), cal)
    np.testing.assert_allclose(p, [5 / 5, 4 / 5, 2 / 5, 2 / 5, 1 / 5, 1 / 5])


def test_jackknife_p_values_leave_the_row_out():
    c = np.array([3.0, 1.0, 2.0, 2.0])
    np.testing.assert_allclose(jackknife_p_values(c), [1 / 4, 4 / 4, 3 / 4, 3 / 4])


def test_bh_matches_scipy_and_the_step_up_rule():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    for _ in range(50):
        p = np.concatenate([rng.uniform(size=80), rng.uniform(0, 0.002, size=rng.integers(0, 10))])
        q = float(rng.choice([0.01, 0.05, 0.2]))
        expected = scipy_stats.false_discovery_control(p, method="bh") <= q
        np.testing.assert_array_equal(benjamini_hochberg(p, q), expected)
        np.testing.assert_array_equal(_bh_numpy(p, q), expected)
    assert benjamini_hochberg(np.array([0.01, 0.02, 0.03, 0.9]), 0.05).tolist() == [True, True, True, False]


def test_single_row_cut_is_where_the_p_value_reaches_q():
    cal = np.arange(1.0, 100.0)  # 99 scores: p(s) = (1 + #{c >= s}) / 100
    cut = single_row_cut(cal, 0.05)
    assert conformal_p_values(np.array([cut + 1e-9]), cal)[0] <= 0.05
    assert conformal_p_values(np.array([cut]), cal)[0] > 0.05
    assert single_row_cut(cal, 0.005) == math.inf  # below 1 / (n + 1): no single row can reach it


@pytest.mark.parametrize("spec", ["fdr:0", "fdr:1", "fdr:1.5", "fdr:abc", "fdr:", "fdr:-0.1", "fdr:nan"])
def test_a_bad_level_is_one_parameter_error(spec):
    with pytest.raises(ParameterError, match="false-discovery rate") as info:
        parse_threshold(spec)
    assert "\n" not in str(info.value)


def test_fdr_spec_parses_with_a_default_level():
    assert parse_threshold("fdr").value == 0.05
    assert str(parse_threshold("FDR:0.1")) == "fdr:0.1"


# ------------------------------------------------------------------ the guarantees
@pytest.mark.parametrize("algo", _detectors())
def test_p_values_are_valid_under_the_null(algo):
    """P(p <= a) <= a (+ sampling error) for inliers, averaged over seeds."""
    levels = np.array([0.01, 0.05, 0.1, 0.2, 0.5])
    rates = []
    for seed in SEEDS:
        train, test, truth = _task(seed)
        det = Detector(algo, random_state=seed).fit(train, calibrate=True)
        p = det.p_values(test[~truth])
        assert np.all((p > 0) & (p <= 1))
        rates.append([(p <= a).mean() for a in levels])
    mean = np.mean(rates, axis=0)
    # Sampling error of a proportion over 8 x 380 rows, plus the conformal slack 1 / (n + 1)
    tolerance = 3 * np.sqrt(levels * (1 - levels) / (len(SEEDS) * 380)) + 1 / 1001
    assert np.all(mean <= levels + tolerance), dict(zip(levels.tolist(), mean.tolist(), strict=True))


@pytest.mark.parametrize("algo", _detectors())
def test_fdr_threshold_controls_the_false_discovery_rate(algo):
    """Realised FDR of fdr:0.05, averaged over seeds, at most 0.05 plus its sampling error; and it finds."""
    fdps, powers = [], []
    for seed in SEEDS:
        train, test, truth = _task(seed)
        det = Detector(algo, threshold="fdr:0.05", random_state=seed).fit(train)
        found = det.predict(test).astype(bool)
        fdps.append((found & ~truth).sum() / max(found.sum(), 1))
        powers.append((found & truth).sum() / truth.sum())
    se = np.std(fdps, ddof=1) / np.sqrt(len(fdps))
    assert np.mean(fdps) <= 0.05 + 2 * se + 0.01, (np.mean(fdps), fdps)
    assert np.mean(powers) > 0.3, powers  # calibrated, not merely silent


def test_fdr_labels_are_benjamini_hochberg_of_the_p_values():
    train, test, _ = _task(0)
    det = Detector("core:hbos", threshold="fdr:0.1", random_state=0).fit(train)
    np.testing.assert_array_equal(det.predict(test), benjamini_hochberg(det.p_values(test), 0.1))
    # the training labels come from the rows' own out-of-fold p-values; clean data: none
    assert det.labels_.sum() == 0 and det.train_p_values_.shape == (train.shape[0],)
    # a row scored alone is anomalous above threshold_
    alone = np.array([det.predict(row[None, :])[0] for row in test[:50]])
    np.testing.assert_array_equal(alone, (det.decision_function(test[:50]) > det.threshold_).astype(int))


def test_predict_proba_conformal_keeps_the_two_columns():
    train, test, _ = _task(1)
    det = Detector("core:hbos", random_state=1).fit(train, calibrate=True)
    proba = det.predict_proba(test, method="conformal")
    assert proba.shape == (test.shape[0], 2)
    np.testing.assert_allclose(proba[:, 0], det.p_values(test))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    with pytest.raises(ParameterError, match="linear, unify or conformal"):
        det.predict_proba(test, method="isotonic")


def test_p_values_need_a_calibrated_fit():
    train, test, _ = _task(2)
    det = Detector("core:hbos").fit(train)
    assert not hasattr(det, "calibration_scores_")
    with pytest.raises(NotFittedError, match="fdr:Q"):
        det.p_values(test)
    det.fit(train, calibrate=True)
    det.fit(train)  # a refit without calibration forgets the previous one
    assert not hasattr(det, "calibration_scores_")


def test_online_detector_calibrates_on_its_prequential_scores():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3))
    det = Detector("core:rshash", threshold="fdr:0.05", random_state=0)
    det.score_partial(X)
    assert det.calibration_scores_.shape == (600,)
    assert np.isfinite(det.threshold_)


def test_calibration_survives_the_model_store(tmp_path):
    import adcore

    train, test, _ = _task(4)
    model = adcore.fit(train, algo="core:hbos", threshold="fdr:0.05", seed=4, name="cal", store=str(tmp_path))
    loaded = adcore.load_model("cal", store=str(tmp_path))
    np.testing.assert_array_equal(loaded.detector.calibration_scores_, model.detector.calibration_scores_)
    np.testing.assert_allclose(loaded.detector.p_values(test), model.detector.p_values(test))
    result = loaded.score(test)
    np.testing.assert_allclose(result.p_values, loaded.detector.p_values(test))
    np.testing.assert_array_equal(result.labels, benjamini_hochberg(result.p_values, 0.05))


# ------------------------------------------------------------------------- the CLI
def _cli(capfd, *args: str) -> tuple[int, str, str]:
    code = run_cli(list(args))
    out, err = capfd.readouterr()
    return code, out, err


@pytest.fixture
def data_file(tmp_path):
    train, test, _ = _task(5)
    path = tmp_path / "data.csv"
    np.savetxt(path, np.vstack([train, test]), delimiter=",", header="a,b,c,d", comments="")
    return path


def test_run_writes_a_p_value_column(capfd, data_file):
    code, out, err = _cli(
        capfd, "run", "--algo", "core:hbos", "-i", str(data_file), "--output-p-values", "--seed", "0"
    )
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "score,label,p_value"
    p = np.array([float(line.split(",")[2]) for line in lines[1:]])
    assert p.shape == (1400,) and np.all((p > 0) & (p <= 1))
    code, out, _ = _cli(capfd, "run", "--algo", "core:hbos", "-i", str(data_file), "--seed", "0")
    assert out.splitlines()[0] == "score,label"  # off by default


def test_training_rows_are_never_bh_anomalies_so_run_refuses_fdr(capfd, data_file):
    """In-sample p-values are ranks (the k-th smallest >= k / n): BH at Q < 1 never rejects one."""
    train, _, _ = _task(7)
    contaminated = np.vstack([train, train[:50] + 8.0])
    det = Detector("core:hbos", threshold="fdr:0.2", random_state=0).fit(contaminated)
    assert det.labels_.sum() == 0
    assert np.all(np.sort(det.train_p_values_) >= np.arange(1, len(contaminated) + 1) / len(contaminated))
    code, out, err = _cli(
        capfd, "run", "--algo", "core:hbos", "-i", str(data_file), "--threshold", "fdr:0.05"
    )
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "adcore run scores the rows it fits on" in lines[0], err
    assert out == ""
    import adcore

    with pytest.raises(ParameterError, match="never rejects"):
        adcore.detect(train, threshold="fdr:0.05")


@pytest.mark.parametrize("level", ["fdr:0", "fdr:1.5", "fdr:abc"])
def test_cli_refuses_a_bad_level_in_one_line(capfd, data_file, level):
    code, _, err = _cli(capfd, "run", "--algo", "core:hbos", "-i", str(data_file), "--threshold", level)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert "false-discovery rate" in lines[0] and "Traceback" not in err


def test_score_writes_p_values_of_a_calibrated_model_only(capfd, data_file, tmp_path):
    store = str(tmp_path / "store")
    common = ["-i", str(data_file), "--store", store, "--seed", "0", "--algo", "core:hbos"]
    assert _cli(capfd, "fit", *common, "-m", "fdr", "--threshold", "fdr:0.05")[0] == 0
    assert _cli(capfd, "fit", *common, "-m", "plain")[0] == 0
    new = tmp_path / "new.jsonl"
    code, out, err = _cli(
        capfd,
        "score",
        "-m",
        "fdr",
        "-i",
        str(data_file),
        "--store",
        store,
        "--output-p-values",
        "-o",
        str(new),
    )
    assert code == 0, err
    rows = [json.loads(line) for line in new.read_text().splitlines()]
    assert len(rows) == 1400 and set(rows[0]) == {"score", "label", "p_value"}
    p = np.array([r["p_value"] for r in rows])
    np.testing.assert_array_equal([r["label"] for r in rows], benjamini_hochberg(p, 0.05))  # one chunk
    code, out, err = _cli(
        capfd, "score", "-m", "plain", "-i", str(data_file), "--store", store, "--output-p-values"
    )
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "no calibration scores" in lines[0], err
    assert out == ""  # refused before any row is written


# ------------------------------------------------------------------------ REST API
def test_detect_returns_p_values_only_when_asked(tmp_path):
    pytest.importorskip("fastapi", reason="the server extra is not installed")
    pytest.importorskip("prometheus_client", reason="the server extra is not installed")
    from fastapi.testclient import TestClient

    from adcore.server.app import create_app
    from adcore.server.schemas import DetectionResponse
    from adcore.server.settings import ServerSettings

    train, _, _ = _task(6, n_train=200, n_null=0, n_anom=0)
    rows = train.tolist()
    settings = ServerSettings(store=str(tmp_path / "models"), rate_limit=0, drift_window=50)
    with TestClient(create_app(settings)) as client:
        plain = client.post("/v1/detect", json={"algorithm": "core:hbos", "data": rows, "seed": 1}).json()
        assert plain.get("p_values") is None
        asked = client.post(
            "/v1/detect", json={"algorithm": "core:hbos", "data": rows, "seed": 1, "p_values": True}
        )
        assert asked.status_code == 200, asked.text
        body = asked.json()
        DetectionResponse.model_validate(body)
        expected = Detector("core:hbos", random_state=1).fit(train, calibrate=True)
        np.testing.assert_allclose(body["p_values"], expected.train_p_values_)
        assert body["labels"] == plain["labels"] and body["scores"] == plain["scores"]
        for spec, needle in (("fdr:2", "false-discovery rate"), ("fdr:0.05", "never rejects")):
            bad = client.post("/v1/detect", json={"data": rows, "threshold": spec})
            assert bad.status_code in (400, 422), bad.text
            assert needle in bad.json()["error"]["message"]
        # a stored model calibrated with fdr:Q labels new rows by BH
        fitted = client.post(
            "/v1/models", json={"name": "cal", "data": rows, "seed": 1, "threshold": "fdr:0.05"}
        )
        assert fitted.status_code in (200, 201), fitted.text
        _, new, truth = _task(6, n_train=10)
        new, truth = new[340:], truth[340:]  # 40 normal, 20 anomalies: BH's Q k / m above 1 / 201
        scored = client.post("/v1/models/cal/score", json={"data": new.tolist()}).json()
        found = np.array(scored["labels"], dtype=bool)
        assert found[truth].mean() > 0.5 and (found & ~truth).sum() <= 3
        schema = client.get("/openapi.json").json()
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(schema)
    props = schema["components"]["schemas"]["DetectRequest"]["properties"]
    assert props["p_values"]["default"] is False
