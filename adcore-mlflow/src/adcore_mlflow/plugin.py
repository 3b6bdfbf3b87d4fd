"""The ``mlflow`` plugin: what adcore-mlflow registers, lazily (no MLflow import here).

The entry point's name, ``mlflow``, qualifies what is registered: the storage schemes
(``mlflow://``) and the ``mlflow`` monitor. Listing
plugins, detectors or schemes imports nothing beyond this module; MLflow (about a second
to import) is loaded only when a store or the monitor is opened.
"""

from __future__ import annotations

from typing import Any

from adcore import hookimpl

from adcore_mlflow.urls import SCHEMES


@hookimpl
def register_storage(register: Any) -> None:
    for scheme in SCHEMES:
        register(
            scheme,
            "adcore_mlflow.store:open_store",
            summary="MLflow's model registry: mlflow:// (MLFLOW_TRACKING_URI), mlflow://HOST:PORT, "
            "mlflow:///PATH/mlflow.db, mlflow://?tracking_uri=URI; aliases as NAME@ALIAS",
            needs=("mlflow",),
            install="adcore-mlflow",
        )


@hookimpl
def register_monitors(register: Any) -> None:
    register(
        "mlflow",
        "adcore_mlflow.tracking:MlflowMonitor",
        summary="MLflow runs: fit parameters and metrics, bench runs per detector and dataset, "
        "stream metrics per batch (MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME)",
        needs=("mlflow",),
        install="adcore-mlflow",
    )
