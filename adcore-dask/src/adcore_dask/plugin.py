"""The plugin's hooks: registers the ``dask`` executor by name only.

The factory is a ``"module:attr"`` string, so ``adcore plugins`` and every command that does
not run on Dask stay free of dask's and distributed's import cost (about a second).
"""

from __future__ import annotations

from typing import Any

from adcore import hookimpl


@hookimpl
def register_executors(register: Any) -> None:
    register(
        "dask",
        "adcore_dask.executor:DaskExecutor",
        summary="Dask: a local cluster (dask) or a scheduler (dask://HOST:PORT); directories, globs, "
        "s3://, CSV and Parquet, written as part files",
        needs=("distributed",),
        install="adcore-dask",
    )
