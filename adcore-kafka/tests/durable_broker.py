"""A tansu broker that can be stopped and started again without losing its topics.

With ``memory://`` storage a restarted tansu has forgotten every topic and committed
offset, so "nothing lost across a broker outage" cannot be tested on it. Here tansu keeps
its log segments and group offsets in S3 (``s3://BUCKET/``) on moto's S3 server, which
outlives the broker: stop tansu (SIGTERM or SIGKILL, by PID), start it again on the same
port with the same bucket, and clients find the same topics, records and offsets.

tansu reads the S3 endpoint and credentials from the ``AWS_*`` variables (the
``object_store`` crate's ``from_env``): ``AWS_ENDPOINT``, ``AWS_ALLOW_HTTP=true`` for a
plain-HTTP stand-in, and any non-empty key pair (moto does not check signatures).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka_broker import Broker, free_port, start_tansu, stop_process


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """moto's S3 server on a free loopback port; yields its endpoint URL, stops it by PID."""
    exe = Path(sys.executable).with_name("moto_server")
    if not exe.exists():
        pytest.fail("moto_server not found: pip install -e './adcore-kafka[test]' (tansu's durable storage)")
    port = free_port()
    process = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"moto_server did not start on port {port} (exit {process.poll()})")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


def create_bucket(endpoint: str) -> str:
    """A fresh bucket (moto accepts an unsigned ``PUT /BUCKET``)."""
    name = f"tansu-{uuid.uuid4().hex[:10]}"
    request = urllib.request.Request(f"{endpoint}/{name}", method="PUT")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200, response.status
    return name


class DurableBroker:
    """tansu with S3 storage; :meth:`stop` and :meth:`start` keep its port and its data."""

    def __init__(self, endpoint: str, log_dir: Path) -> None:
        self.storage = f"s3://{create_bucket(endpoint)}/"
        self.env = {
            **os.environ,
            "AWS_ENDPOINT": endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "adcore-test",
            "AWS_SECRET_ACCESS_KEY": "adcore-test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        self.log_dir = log_dir
        self.starts = 0
        self.broker: Broker | None = None
        self.port: int | None = None

    def start(self) -> Broker:
        """Start tansu (on the first call's port when restarting); returns once it answers."""
        self.starts += 1
        log = self.log_dir / f"tansu-{self.starts}.log"
        self.broker = start_tansu(log, storage=self.storage, env=self.env, port=self.port)
        self.port = self.broker.port
        return self.broker

    def stop(self, how: signal.Signals = signal.SIGTERM) -> None:
        """Stop tansu by PID with ``how`` (SIGKILL: no chance to flush anything)."""
        assert self.broker is not None
        process = self.broker.process
        if process.poll() is None:
            process.send_signal(how)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def close(self) -> None:
        if self.broker is not None:
            stop_process(self.broker.process)
