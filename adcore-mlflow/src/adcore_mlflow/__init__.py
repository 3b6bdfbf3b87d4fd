"""adcore-mlflow: adcore models in MLflow.

- :func:`log_model` / :func:`load_model`: an MLflow model flavor (``adcore`` plus
  ``python_function``) built from adcore's own artifact bytes, checked by SHA-256 on load;
- ``mlflow://``: MLflow's model registry as an adcore model store (``--store mlflow://``),
  aliases included (``payments@champion``);
- the ``mlflow`` monitor: runs with parameters, metrics and artifacts for ``fit``, ``bench``
  and ``stream`` events.

Importing this package imports no MLflow: the names below load their modules on first use,
and the plugin module registers lazy ``"module:attr"`` factories.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "load_model", "log_model", "save_model"]


def __getattr__(name: str) -> Any:
    if name in ("log_model", "load_model", "save_model"):
        from adcore_mlflow import flavor

        return getattr(flavor, name)
    raise AttributeError(f"module 'adcore_mlflow' has no attribute {name!r}")
