"""The adcore flavor: log, load through pyfunc, predict, requirements, signature, tamper refusal."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import adcore
import mlflow
import numpy as np
import pandas as pd
import pytest
from adcore.errors import IntegrityError

import adcore_mlflow
from adcore_mlflow.flavor import DATA_FILE, FLAVOR_NAME


def frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])


def test_log_load_predict_round_trip(tracking_uri):
    df = frame()
    model = adcore.fit(df, algo="core:hbos", seed=0)
    info = adcore_mlflow.log_model(model, name="detector", registered_model_name="pay")
    loaded = mlflow.pyfunc.load_model("models:/pay/1")
    out = loaded.predict(df.iloc[:50])
    expected = model.score(df.iloc[:50])
    assert list(out.columns) == ["score", "label"]
    assert np.array_equal(out["score"].to_numpy(), expected.scores)
    assert np.array_equal(out["label"].to_numpy(), expected.labels)
    assert out["label"].dtype == np.int64
    # the signature is the training schema; outputs are score and label
    signature = loaded.metadata.signature
    assert signature.inputs.input_names() == ["a", "b", "c"]
    assert signature.outputs.input_names() == ["score", "label"]
    # the artifact is adcore's own bytes, nothing cloudpickled
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    assert (local / DATA_FILE).read_bytes() == model.to_bytes()
    assert not list(local.rglob("*.pkl")) and not (local / "python_model.pkl").exists()
    conf = loaded.metadata.flavors[FLAVOR_NAME]
    assert conf["algorithm"] == "core:hbos" and len(conf["sha256"]) == 64
    assert loaded.metadata.flavors["python_function"]["loader_module"] == "adcore_mlflow.flavor"
    # the native flavor gives the adcore Model back
    native = adcore_mlflow.load_model("models:/pay/1")
    assert np.array_equal(native.score(df).scores, model.score(df).scores)


def test_requirements_name_adcore_and_the_plugin_distribution(tracking_uri):
    algo = "pyod:iforest" if importlib.util.find_spec("adcore_pyod") else "core:hbos"
    if algo.startswith("pyod") and importlib.util.find_spec("pyod") is None:
        algo = "core:hbos"
    model = adcore.fit(frame(), algo=algo, seed=0)
    info = adcore_mlflow.log_model(model, name="m")
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    reqs = (local / "requirements.txt").read_text().split()
    names = {r.split("==")[0] for r in reqs}
    assert {"adcore", "adcore-mlflow", "mlflow"} <= names
    if algo.startswith("pyod"):
        assert "adcore-pyod" in names
    assert f"adcore=={adcore.__version__}" in reqs


def test_edited_artifact_is_refused_on_load(tracking_uri):
    model = adcore.fit(frame(), algo="core:hbos", seed=0)
    adcore_mlflow.log_model(model, name="m", registered_model_name="t")
    local = Path(mlflow.artifacts.download_artifacts("models:/t/1"))
    data = bytearray((local / DATA_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (local / DATA_FILE).write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        mlflow.pyfunc.load_model(str(local))
    (local / DATA_FILE).write_bytes(bytes(data[:100]))
    with pytest.raises(IntegrityError, match="truncated"):
        adcore_mlflow.load_model(str(local))


def test_unnamed_features_and_numpy_input(tracking_uri):
    X = frame().to_numpy()
    model = adcore.fit(X, algo="core:mad", seed=0)
    info = adcore_mlflow.log_model(model, name="m")
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    out = loaded.predict(pd.DataFrame(X[:10]))
    assert np.array_equal(out["score"].to_numpy(), model.score(X[:10]).scores)


def test_log_model_refuses_other_objects(tracking_uri):
    with pytest.raises(TypeError, match="adcore Model"):
        adcore_mlflow.log_model(object(), name="m")  # type: ignore[arg-type]
