"""What an operator reads while the broker is away: one line per kind of error and outage.

No broker runs here: a client pointed at a closed loopback port fails to connect the way it
does when the broker goes away (test_kafka_faults shows the whole outage end to end).
"""

from __future__ import annotations

import logging
import socket
import time

import pytest
from confluent_kafka import KafkaError, KafkaException

from adcore_kafka.clients import ErrorTracker, make_consumer


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket is closed


def _warnings(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno >= logging.WARNING]


def test_each_kind_of_error_is_reported_once_per_outage(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="adcore.kafka")
    errors = ErrorTracker("consumer (group g)")
    down = KafkaError(KafkaError._TRANSPORT, "Connect to ipv4#127.0.0.1:9 failed: Connection refused")
    for _ in range(50):
        errors(down)
    errors(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    errors.recovered()
    errors.recovered()  # nothing to report twice
    errors(down)  # the next outage is reported afresh

    lines = _warnings(caplog, "adcore.kafka")
    assert len(lines) == 4, lines
    assert "Connection refused" in lines[0] and "retrying" in lines[0]
    assert "brokers are down" in lines[1]
    assert lines[2] == "kafka consumer (group g): working again"
    assert "Connection refused" in lines[3]
    errors.raise_fatal()  # transient errors are never raised


def test_a_fatal_error_is_kept_and_raised() -> None:
    errors = ErrorTracker("producer (out)")
    errors(KafkaError(KafkaError._FENCED, "producer fenced", fatal=True))
    errors.recovered()  # a fatal error does not go away
    with pytest.raises(KafkaException, match="fenced"):
        errors.raise_fatal()


def test_connection_failures_reach_the_terminal_once(caplog: pytest.LogCaptureFixture) -> None:
    """librdkafka logs every failed connection attempt (dozens a second); those lines are
    DEBUG, and only the error callback's one line per kind is a warning."""
    caplog.set_level(logging.DEBUG, logger="adcore.kafka")
    errors = ErrorTracker("consumer (group g)")
    consumer = make_consumer(
        {"bootstrap.servers": f"127.0.0.1:{_closed_port()}", "group.id": "g", "reconnect.backoff.ms": 10},
        errors,
    )
    try:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            consumer.poll(0.1)
    finally:
        consumer.close()
    client = [r for r in caplog.records if r.name == "adcore.kafka.client"]
    attempts = [r for r in client if isinstance(r.args, tuple) and r.args[:1] == ("FAIL",)]
    assert len(attempts) >= 3, attempts  # librdkafka kept trying on its own...
    assert all(r.levelno == logging.DEBUG for r in attempts)  # ...quietly
    assert not _warnings(caplog, "adcore.kafka.client")
    lines = _warnings(caplog, "adcore.kafka")
    assert 1 <= len(lines) <= 2, lines  # _TRANSPORT, and maybe _ALL_BROKERS_DOWN
    assert any("Connection refused" in line for line in lines), lines
