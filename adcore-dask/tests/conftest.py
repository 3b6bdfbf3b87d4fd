"""Fixtures: moto's S3 server and a Dask cluster (scheduler + 2 workers), once per session.

moto starts first, so the workers inherit its endpoint and test credentials (they read S3
with their own environment, as production workers do); the test process gets the same
variables for its own listing and checks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from servers import DaskCluster, S3Server, start_dask, start_moto, stop, stop_dask


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    pytest.importorskip("moto")
    server = start_moto(tmp_path_factory.mktemp("moto"))
    try:
        yield server
    finally:
        stop(server.process)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory, s3: S3Server) -> Iterator[DaskCluster]:
    """A scheduler and two single-threaded workers on 127.0.0.1, with the S3 variables set."""
    env = {**os.environ, **s3.env(), "PYTHONUNBUFFERED": "1"}
    env.pop("ADCORE_STORE", None)
    mp = pytest.MonkeyPatch()
    for key, value in s3.env().items():
        mp.setenv(key, value)
    started = start_dask(tmp_path_factory.mktemp("dask"), env)
    try:
        yield started
    finally:
        stop_dask(started)
        mp.undo()


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A fresh embedded model store (a local directory the workers on this machine can read)."""
    return str(tmp_path / "store")
