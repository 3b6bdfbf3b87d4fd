"""Filesystems for inputs and outputs: local paths and ``s3://`` (fsspec/s3fs).

Both the client (listing, the output check, ``_SUCCESS``) and every worker (reading, writing
parts) open filesystems here, each from its own environment: the standard AWS variables
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_PROFILE``,
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``) are read where the code runs, so secrets
from the client's environment never travel through the scheduler. ``--storage-option
KEY=VALUE`` values do travel with the tasks: they are the user's explicit choice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from adcore.errors import MissingDependencyError, ParameterError

LOCAL = "file"


def protocol_of(url: str) -> str:
    """``s3://b/k`` -> ``s3``; a plain path (or ``file://``) -> ``file``."""
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep else LOCAL


def is_local(url: str) -> bool:
    return protocol_of(url) in (LOCAL, "local")


def local_path(url: str) -> str:
    """The path of a local URL (``file:///x`` -> ``/x``)."""
    return url[len("file://") :] if url.lower().startswith("file://") else url


def coerce_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``--storage-option`` text values as fsspec wants them: true/false, integers, JSON objects.

    ``region_name`` (and ``region``) go into s3fs's ``client_kwargs``, which a KEY=VALUE
    cannot spell.
    """
    out: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, str):
            text = value.strip()
            if text.lower() in ("true", "false"):
                value = text.lower() == "true"
            elif text.lstrip("-").isdigit():
                value = int(text)
            elif text.startswith("{"):
                try:
                    value = json.loads(text)
                except ValueError:
                    raise ParameterError(f"--storage-option {key}: not valid JSON: {text!r}") from None
        if key in ("region", "region_name"):
            out.setdefault("client_kwargs", {})["region_name"] = value
        else:
            out[key] = value
    return out


def filesystem(url: str, options: Mapping[str, Any]) -> tuple[Any, str]:
    """The fsspec filesystem for ``url`` and the path within it.

    For ``s3://`` the endpoint comes from ``endpoint_url`` in the options, else from
    ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (set explicitly: not every s3fs release reads
    them itself), else AWS.
    """
    import fsspec

    opts = coerce_options(options)
    protocol = protocol_of(url)
    if protocol in ("s3", "s3a"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint and "endpoint_url" not in opts and "endpoint_url" not in opts.get("client_kwargs", {}):
            opts["endpoint_url"] = endpoint
        try:
            import s3fs  # noqa: F401 - a clean message instead of fsspec's
        except ImportError as e:
            raise MissingDependencyError(
                "s3:// needs s3fs: pip install s3fs (adcore-dask installs it)"
            ) from e
    try:
        fs, path = fsspec.core.url_to_fs(url, **opts)
    except (TypeError, ValueError) as e:
        raise ParameterError(f"cannot open {url}: {e} (check --storage-option)") from None
    return fs, path


def display_url(fs: Any, path: str) -> str:
    """How a file is named in outputs and messages: a plain path locally, ``s3://b/k`` remotely."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol in (LOCAL, "local"):
        return path
    return f"{protocol}://{path}"
