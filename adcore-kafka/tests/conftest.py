"""Fixtures: one tansu broker per test session (see kafka_broker.py), stream environments."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("confluent_kafka")

from kafka_broker import Broker, start_tansu, stop_process


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One tansu broker for the whole session; stopped by PID at the end."""
    started = start_tansu(tmp_path_factory.mktemp("tansu") / "tansu.log")
    try:
        yield started
    finally:
        stop_process(started.process)


@pytest.fixture
def stream_env(tmp_path: Path) -> dict[str, str]:
    """Environment for ``adcore stream`` subprocesses: an isolated model store, this interpreter."""
    env = dict(os.environ)
    env["ADCORE_HOME"] = str(tmp_path / "home")
    env.pop("ADCORE_STORE", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env
