"""Store URLs: which MLflow tracking server (or database) an ``mlflow://`` store URL names.

Forms, all documented in docs/mlflow.md:

``mlflow://``
    MLflow's own configuration: ``MLFLOW_TRACKING_URI`` (and ``MLFLOW_REGISTRY_URI`` when the
    registry lives elsewhere), exactly what ``mlflow`` commands use.
``mlflow://HOST:PORT[/PATH]``
    a tracking server over plain HTTP (``http://HOST:PORT/PATH``).
``mlflow:///PATH/TO/mlflow.db``
    MLflow's SQLite database directly, no server (``sqlite:////PATH/TO/mlflow.db``).
``mlflow://?tracking_uri=URI``
    anything else MLflow accepts as a tracking URI: ``https://...``, ``postgresql://...``.
    Credentials belong in MLflow's variables (``MLFLOW_TRACKING_USERNAME``/``_PASSWORD``,
    ``MLFLOW_TRACKING_TOKEN``), not in the URL.

Two more query parameters: ``experiment=NAME`` (where the logged models go; default
``adcore``) and ``artifacts=URI`` (the artifact location given to that experiment when adcore
creates it; worth setting with a database, whose default would be ``./mlruns`` of whichever
directory the first fit ran in).

Scheme names registered with adcore are letters, digits, ``_``, ``-`` and ``.``, so the
``mlflow+https://`` spelling is not available; ``mlflow+SCHEME://...`` is still parsed here
in case the core allows ``+`` one day. Free of MLflow imports: the plugin module imports it
while listing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import parse_qsl

from adcore.errors import ParameterError

SCHEMES = ("mlflow",)
DEFAULT_EXPERIMENT = "adcore"
_KEYS = ("experiment", "artifacts", "tracking_uri", "registry_uri")


@dataclass(frozen=True)
class Target:
    """Where a store URL points: ``tracking_uri`` None means MLflow's own configuration."""

    tracking_uri: str | None
    registry_uri: str | None
    experiment: str = DEFAULT_EXPERIMENT
    artifact_location: str | None = None

    @property
    def is_http(self) -> bool:
        uri = self.tracking_uri or ""
        return uri.split(":", 1)[0].lower() in ("http", "https")


def parse_store_url(url: str) -> Target:
    """Read an ``mlflow://`` store URL (see the module docstring); a bad one is a ParameterError."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or not (scheme == "mlflow" or scheme.startswith("mlflow+")):
        raise ParameterError(
            f"not an MLflow store URL: {url!r}; use mlflow://, mlflow://HOST:PORT, mlflow:///PATH/mlflow.db "
            "or mlflow://?tracking_uri=URI"
        )
    base, qmark, query = rest.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True) if qmark else []
    unknown = [k for k, _ in pairs if k not in _KEYS]
    if unknown:
        raise ParameterError(
            f"unknown query parameter {unknown[0]!r} in the MLflow store URL; known: {', '.join(_KEYS)}"
        )
    options = dict(pairs)
    experiment = options.get("experiment") or DEFAULT_EXPERIMENT
    artifacts = options.get("artifacts") or None
    tracking = options.get("tracking_uri") or None
    if tracking and _has_password(tracking):
        raise ParameterError(
            "the MLflow store URL carries a password in tracking_uri=, which would show in listings and "
            "messages: use mlflow:// with MLFLOW_TRACKING_URI set, or MLFLOW_TRACKING_USERNAME/_PASSWORD"
        )
    if scheme != "mlflow":  # mlflow+https://host -> https://host
        tracking = f"{scheme.split('+', 1)[1]}://{base}"
    elif base.startswith("/"):  # mlflow:///path/mlflow.db: empty host, absolute path
        tracking = f"sqlite:///{base}"
    elif base:
        tracking = f"http://{base}"
    if tracking is not None and (base and scheme == "mlflow") and options.get("tracking_uri"):
        raise ParameterError(f"{url!r} names the tracking server twice: give HOST:PORT or tracking_uri=")
    registry = options.get("registry_uri") or (
        tracking if tracking else os.environ.get("MLFLOW_REGISTRY_URI") or None
    )
    return Target(tracking, registry, experiment, artifacts)


def _has_password(uri: str) -> bool:
    """``scheme://user:secret@host``: a password in the userinfo of a nested URI."""
    from urllib.parse import urlsplit

    try:
        return urlsplit(uri).password is not None
    except ValueError:
        return True  # unparsable: refuse rather than risk printing it
