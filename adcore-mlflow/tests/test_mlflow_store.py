"""The mlflow:// store: aliases, MLflow-loadable versions, errors. The full registry suite
(round trip, versions, remove, tamper, truncation, concurrent fits, SIGKILL) runs from the core's
tests/test_registry.py with its ``mlflow`` parameter."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import adcore
import mlflow
import numpy as np
import pandas as pd
import pytest
from adcore.errors import ModelNotFoundError, ParameterError, StoreUnavailableError
from adcore.services.registry import ModelStore, open_store

from adcore_mlflow.urls import parse_store_url


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("ADCORE_")}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "adcore.cli.main", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=180,
    )


def test_store_is_a_model_store_and_versions_are_mlflow_models(store_url, train_csv):
    first = adcore.fit(train_csv, algo="core:hbos", name="pay", store=store_url, seed=0)
    assert first.ref == "pay@1"
    with contextlib.closing(open_store(store_url)) as store:
        assert isinstance(store, ModelStore)
        record = store.get("pay", 1)
    assert record.created_at.endswith("+00:00") and record.artifact.endswith("/model.adcore")
    # the same version, through MLflow: load it as a pyfunc model and predict
    target = parse_store_url(store_url)
    mlflow.set_tracking_uri(target.tracking_uri)
    loaded = mlflow.pyfunc.load_model("models:/pay/1")
    df = pd.read_csv(train_csv)
    out = loaded.predict(df)
    assert np.array_equal(
        out["score"].to_numpy(), adcore.load_model("pay@1", store=store_url).score(df).scores
    )


def test_aliases_resolve_everywhere_a_version_does(store_url, train_csv, tmp_path):
    adcore.fit(train_csv, algo="core:hbos", name="pay", store=store_url, seed=0)
    adcore.fit(train_csv, algo="core:mad", name="pay", store=store_url, seed=0)
    from mlflow import MlflowClient

    MlflowClient(parse_store_url(store_url).tracking_uri).set_registered_model_alias("pay", "champion", "1")
    assert adcore.load_model("pay@champion", store=store_url).ref == "pay@1"
    assert adcore.load_model("pay", store=store_url).ref == "pay@2"
    with pytest.raises(ModelNotFoundError, match=r"has no alias 'nope'.*its versions: 1, 2"):
        adcore.load_model("pay@nope", store=store_url)
    by_alias = cli(
        "score",
        "--model",
        "pay@champion",
        "--input",
        str(train_csv),
        "-o",
        str(tmp_path / "a.csv"),
        "--store",
        store_url,
    )
    by_version = cli(
        "score",
        "--model",
        "pay@1",
        "--input",
        str(train_csv),
        "-o",
        str(tmp_path / "v.csv"),
        "--store",
        store_url,
    )
    assert by_alias.returncode == 0 and by_version.returncode == 0, by_alias.stderr + by_version.stderr
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "v.csv").read_bytes()
    shown = cli("models", "show", "pay@champion", "--json", "--store", store_url)
    assert shown.returncode == 0 and '"ref": "pay@1"' in shown.stdout.replace('"ref":"', '"ref": "')


def test_the_file_store_refuses_an_alias_in_one_line(tmp_path, train_csv):
    store = str(tmp_path / "files")
    adcore.fit(train_csv, algo="core:hbos", name="pay", store=store, seed=0)
    with pytest.raises(ParameterError, match="the file store has no aliases"):
        adcore.load_model("pay@champion", store=store)
    done = cli("score", "--model", "pay@champion", "--input", str(train_csv), "--store", store)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "NAME@VERSION" in done.stderr


def test_mlflow_url_uses_mlflow_tracking_uri(tracking_uri, train_csv):
    model = adcore.fit(train_csv, algo="core:hbos", name="env", store="mlflow://", seed=1)
    assert model.ref == "env@1"
    assert [int(v.version) for v in mlflow.MlflowClient().search_model_versions("name = 'env'")] == [1]


def test_an_unreachable_server_is_one_typed_line(train_csv):
    with pytest.raises(StoreUnavailableError, match=r"http://127\.0\.0\.1:9 .*unreachable"):
        open_store("mlflow://127.0.0.1:9")
    done = cli(
        "fit",
        "--algo",
        "core:hbos",
        "--input",
        str(train_csv),
        "--model",
        "x",
        "--store",
        "mlflow://127.0.0.1:9",
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr


def test_store_urls():
    assert parse_store_url("mlflow://h:5000/p").tracking_uri == "http://h:5000/p"
    assert parse_store_url("mlflow:///srv/m.db").tracking_uri == "sqlite:////srv/m.db"
    target = parse_store_url(
        "mlflow://?tracking_uri=https%3A%2F%2Fml.example%2F&experiment=e&artifacts=s3://b/p"
    )
    assert (target.tracking_uri, target.experiment, target.artifact_location) == (
        "https://ml.example/",
        "e",
        "s3://b/p",
    )
    with pytest.raises(ParameterError, match="password in tracking_uri"):
        parse_store_url("mlflow://?tracking_uri=https%3A%2F%2Fu%3Asecret%40ml.example%2F")
    with pytest.raises(ParameterError, match="unknown query parameter 'nope'"):
        parse_store_url("mlflow://h:1?nope=1")


def test_non_adcore_versions_in_the_registry_are_skipped(store_url, train_csv, tmp_path):
    adcore.fit(train_csv, algo="core:hbos", name="mixed", store=store_url, seed=0)
    client = mlflow.MlflowClient(parse_store_url(store_url).tracking_uri)
    client.create_registered_model("other")
    client.create_model_version("other", source=str(tmp_path), await_creation_for=0)
    with contextlib.closing(open_store(store_url)) as store:
        assert [r.ref for r in store.list()] == ["mixed@1"]
        with pytest.raises(ModelNotFoundError):
            store.get("other", 1)


def test_rest_scores_an_alias(store_url, train_csv):
    pytest.importorskip("fastapi")
    from adcore.server.app import create_app
    from adcore.server.settings import ServerSettings
    from fastapi.testclient import TestClient

    adcore.fit(train_csv, algo="core:hbos", name="pay", store=store_url, seed=0)
    adcore.fit(train_csv, algo="core:mad", name="pay", store=store_url, seed=0)
    mlflow.MlflowClient(parse_store_url(store_url).tracking_uri).set_registered_model_alias(
        "pay", "champion", "1"
    )
    rows = pd.read_csv(train_csv).head(10).to_numpy().tolist()
    with TestClient(create_app(ServerSettings(store=store_url, rate_limit=0))) as client:
        by_alias = client.post("/v1/models/pay@champion/score", json={"data": rows})
        by_version = client.post("/v1/models/pay@1/score", json={"data": rows})
        missing = client.post("/v1/models/pay@nope/score", json={"data": rows})
    assert by_alias.status_code == 200, by_alias.text
    assert by_alias.json()["scores"] == by_version.json()["scores"]
    assert missing.status_code == 404, missing.text
