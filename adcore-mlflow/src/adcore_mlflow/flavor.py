"""The ``adcore`` MLflow flavor: an adcore model as an MLflow model, from adcore's own bytes.

A logged model directory holds::

    MLmodel             flavors: adcore (sha256, size, record) and python_function
    model.adcore        the artifact exactly as adcore's stores keep it (Model.to_bytes())
    requirements.txt    adcore, the plugin distribution of the algorithm, adcore-mlflow, mlflow
    conda.yaml, python_env.yaml

Nothing of the live objects is cloudpickled: ``python_function`` names this module as its
``loader_module``, and :func:`_load_pyfunc` reads ``model.adcore`` back through adcore's own
loader after checking its size and SHA-256 against ``MLmodel``. So the bytes that MLflow
serves are the bytes adcore verified at fit, and an artifact edited afterwards is refused
(``IntegrityError``) instead of being unpickled. ``predict(DataFrame)`` returns a DataFrame
with ``score`` (higher = more anomalous) and ``label`` (1 = above the stored threshold),
the scores ``adcore score`` gives for the same rows.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import mlflow
from adcore.errors import IntegrityError, StoreError
from adcore.services.models import Model
from adcore.services.registry import ModelRecord, sha256_hex, verify_artifact
from mlflow.models import Model as MlflowModel
from mlflow.models import ModelSignature
from mlflow.models.model import MLMODEL_FILE_NAME
from mlflow.types import ColSpec, Schema

FLAVOR_NAME = "adcore"
DATA_FILE = "model.adcore"
LOADER_MODULE = "adcore_mlflow.flavor"
#: numpy dtype prefix -> MLflow column type (anything else is read as double, as adcore does)
_COLUMN_TYPES = {"float": "double", "int": "long", "uint": "long", "bool": "boolean"}


# ------------------------------------------------------------------------------ describing
def signature_for(record: ModelRecord) -> ModelSignature:
    """Inputs: the training features (named when the training data had names); outputs: score, label."""
    names = record.feature_names or [None] * int(record.n_features)
    dtypes = list(record.dtypes) or ["float64"] * len(names)
    inputs = [
        ColSpec(_column_type(dtypes[i] if i < len(dtypes) else ""), name) for i, name in enumerate(names)
    ]
    outputs = Schema([ColSpec("double", "score"), ColSpec("long", "label")])
    return ModelSignature(inputs=Schema(inputs), outputs=outputs)


def _column_type(dtype: str) -> str:
    for prefix, kind in _COLUMN_TYPES.items():
        if str(dtype).startswith(prefix):
            return kind
    return "double"


def requirements_for(record: ModelRecord) -> list[str]:
    """The distributions a model needs: adcore, each plugin of its algorithm (members too), this one.

    Pinned to the versions it was fitted with (``record.versions``), which are the ones whose
    pickles it holds; the plugin's own dependencies (PyOD, scikit-learn) follow from it.
    """
    import adcore

    from adcore_mlflow import __version__

    versions = record.versions or {}
    reqs = [f"adcore=={versions.get('adcore') or adcore.__version__}"]
    for key, version in sorted(versions.items()):
        if not key.startswith("plugin:") or key == "plugin:core":
            continue
        dist = _distribution_of(key.split(":", 1)[1])
        if dist:
            reqs.append(f"{dist}=={version}" if version else dist)
    reqs.append(f"adcore-mlflow=={__version__}")
    reqs.append(f"mlflow=={mlflow.__version__}")
    return reqs


def _distribution_of(plugin: str) -> str | None:
    """The pip name of an installed plugin (``pyod`` -> ``adcore-pyod``), without loading hooks."""
    from adcore import get_host

    info = get_host().info(plugin)
    return str(info.distribution) if info is not None and info.distribution else None


def _record_of(model: Model) -> ModelRecord:
    """The model's stored record, or the one a save would write (its version still 0)."""
    return model.record if model.record is not None else model.to_record(model.name or "model")


# ---------------------------------------------------------------------------------- saving
def save_model(
    model: Model,
    path: str | os.PathLike[str],
    mlflow_model: MlflowModel | None = None,
    *,
    signature: ModelSignature | None = None,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> MlflowModel:
    """Write ``model`` (an :class:`adcore.services.models.Model`) as an MLflow model directory."""
    data = model.to_bytes()
    record = _record_of(model).replace(sha256=sha256_hex(data), size=len(data))
    return save_artifact(
        data,
        record,
        path,
        mlflow_model,
        signature=signature,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        metadata=metadata,
    )


def save_artifact(
    data: bytes,
    record: ModelRecord,
    path: str | os.PathLike[str],
    mlflow_model: MlflowModel | None = None,
    *,
    signature: ModelSignature | None = None,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> MlflowModel:
    """Write adcore artifact bytes (already checksummed in ``record``) as an MLflow model directory.

    This is what the ``mlflow://`` store logs for each version, so every stored version is
    also a servable MLflow model (``models:/NAME/VERSION``).
    """
    import yaml
    from mlflow.utils.environment import (
        _CONDA_ENV_FILE_NAME,
        _PYTHON_ENV_FILE_NAME,
        _REQUIREMENTS_FILE_NAME,
        _process_pip_requirements,
        _PythonEnv,
    )

    verify_artifact(record, data)  # the record must describe exactly these bytes
    root = Path(path)
    if root.exists() and any(root.iterdir()):
        raise StoreError(f"cannot save an MLflow model into {root}: the directory is not empty")
    root.mkdir(parents=True, exist_ok=True)
    _write_durably(root / DATA_FILE, data)
    mlflow_model = mlflow_model if mlflow_model is not None else MlflowModel()
    mlflow_model.signature = signature if signature is not None else signature_for(record)
    if metadata:
        mlflow_model.metadata = metadata
    conda_env, reqs, _ = _process_pip_requirements(
        requirements_for(record), pip_requirements, extra_pip_requirements
    )
    mlflow.pyfunc.add_to_model(
        mlflow_model,
        loader_module=LOADER_MODULE,
        data=DATA_FILE,
        conda_env=_CONDA_ENV_FILE_NAME,
        python_env=_PYTHON_ENV_FILE_NAME,
    )
    described = {k: v for k, v in record.to_dict().items() if k not in ("ref", "artifact")}
    mlflow_model.add_flavor(
        FLAVOR_NAME,
        data=DATA_FILE,
        sha256=record.sha256,
        size=record.size,
        algorithm=record.algorithm,
        adcore_version=(record.versions or {}).get("adcore"),
        record=json.loads(json.dumps(described, allow_nan=False, default=str)),
    )
    mlflow_model.save(str(root / MLMODEL_FILE_NAME))
    with open(root / _CONDA_ENV_FILE_NAME, "w") as f:
        yaml.safe_dump(conda_env, stream=f, default_flow_style=False)
    (root / _REQUIREMENTS_FILE_NAME).write_text("\n".join(reqs) + "\n")
    _PythonEnv.current().to_yaml(str(root / _PYTHON_ENV_FILE_NAME))
    return mlflow_model


def _write_durably(path: Path, data: bytes) -> None:
    """Write and fsync: the store publishes a version only after its bytes are on disk."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def log_model(
    model: Model,
    name: str = "model",
    *,
    registered_model_name: str | None = None,
    signature: ModelSignature | None = None,
    pip_requirements: list[str] | None = None,
    extra_pip_requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Log an adcore model to the active run (or a new logged model) and return MLflow's ModelInfo.

    ``model``: an :class:`adcore.services.models.Model`, from ``adcore.fit(...)`` or
    ``adcore.load_model(...)``. ``registered_model_name`` also registers it as a version.
    The signature comes from the training schema; the requirements name adcore and the
    plugin distribution of the algorithm (``adcore-pyod`` for ``pyod:*``).
    """
    if not isinstance(model, Model):
        raise TypeError(f"log_model takes an adcore Model (adcore.fit(...)), not {type(model).__name__}")
    return MlflowModel.log(
        None,  # artifact_path: deprecated by MLflow 3 in favour of name=, still positional
        name=name,
        flavor=sys.modules[__name__],
        registered_model_name=registered_model_name,
        model=model,
        signature=signature,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        metadata=metadata,
        **kwargs,
    )


# --------------------------------------------------------------------------------- loading
def load_model(model_uri: str, dst_path: str | None = None) -> Model:
    """The adcore :class:`~adcore.services.models.Model` behind an MLflow model URI, verified first."""
    from mlflow.tracking.artifact_utils import _download_artifact_from_uri

    local = _download_artifact_from_uri(artifact_uri=model_uri, output_path=dst_path)
    return _load_verified(Path(local))


def _load_verified(root: Path) -> Model:
    """Read ``model.adcore`` under ``root``, refuse it unless size and SHA-256 match ``MLmodel``."""
    conf = MlflowModel.load(str(root / MLMODEL_FILE_NAME)).flavors.get(FLAVOR_NAME)
    if conf is None:
        raise StoreError(f"{root} is not an adcore model: its MLmodel has no '{FLAVOR_NAME}' flavor")
    path = root / conf.get("data", DATA_FILE)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise IntegrityError(f"the adcore artifact {path} is missing; the model cannot be loaded") from exc
    fields = dict(conf.get("record") or {})
    fields.update(sha256=conf["sha256"], size=int(conf["size"]))
    record = ModelRecord.from_dict(fields)
    verify_artifact(record, data)
    return Model.from_bytes(data, record=record if record.version else None)


def _load_pyfunc(data_path: str, model_config: dict[str, Any] | None = None) -> AdcorePyfunc:
    """MLflow's ``python_function`` entry: ``data_path`` is ``<model dir>/model.adcore``."""
    return AdcorePyfunc(_load_verified(Path(data_path).parent))


class AdcorePyfunc:
    """What ``mlflow.pyfunc.load_model`` wraps: scores and labels for a DataFrame of features."""

    def __init__(self, model: Model) -> None:
        self.model = model

    def get_raw_model(self) -> Model:
        """The adcore model (``pyfunc_model.get_raw_model()``)."""
        return self.model

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """``score`` and ``label`` per row, in input order, with the input's index."""
        import pandas as pd

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        scores, labels = self.model.score_dataset(self.model.as_dataset(frame))
        return pd.DataFrame({"score": scores, "label": labels}, index=frame.index)
