"""URLs, settings files, record formats and registration: everything that needs no broker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from adcore.domain.events import AnomalyDetected, DetectionCompleted
from adcore.errors import ParameterError
from adcore.messaging import open_sink, open_source
from adcore.services.streaming.records import Malformed

from adcore_kafka.config import ENV_CONFIG, client_config, load_config_file, parse_url
from adcore_kafka.dlq import dead_letter_record
from adcore_kafka.events import event_record, parse_types
from adcore_kafka.metadata import key_bytes, record_metadata


def test_url_splits_servers_topics_options_and_settings() -> None:
    url = parse_url(
        "kafka://h1:9092,h2:9092/payments,refunds?group=scorers&dlq=bad&session.timeout.ms=6000&debug=cgrp"
    )
    assert url.servers == "h1:9092,h2:9092"
    assert url.topics == ("payments", "refunds")
    assert url.options == {"group": "scorers", "dlq": "bad"}
    assert url.settings == {"session.timeout.ms": "6000", "debug": "cgrp"}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("kafka://127.0.0.1:9092", "name the topic"),
        ("kafka://h/", "name the topic"),
        ("http://h/t", "not a kafka"),
    ],
)
def test_bad_urls_are_parameter_errors(url: str, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        parse_url(url)


def test_a_sink_writes_to_one_topic() -> None:
    with pytest.raises(ParameterError, match="one topic"):
        _ = parse_url("kafka://h/a,b").topic


def test_defaults_keep_at_least_once() -> None:
    consumer = client_config(parse_url("kafka://h:1/t?group=g"), "consumer", environ={})
    producer = client_config(parse_url("kafka://h:1/t"), "producer", environ={})
    assert consumer["enable.auto.commit"] is False and consumer["enable.auto.offset.store"] is False
    assert consumer["auto.offset.reset"] == "earliest" and consumer["group.id"] == "g"
    assert producer["enable.idempotence"] is True and producer["acks"] == "all"
    assert consumer["bootstrap.servers"] == producer["bootstrap.servers"] == "h:1"


@pytest.mark.parametrize(
    ("url", "role", "key"),
    [
        ("kafka://h/t?group=g&enable.auto.commit=true", "consumer", "enable.auto.commit"),
        ("kafka://h/t?acks=1", "producer", "acks"),
    ],
)
def test_settings_that_would_break_delivery_are_refused(url: str, role: str, key: str) -> None:
    with pytest.raises(ParameterError, match=key):
        client_config(parse_url(url), role, environ={})


def test_settings_layer_env_file_then_url_file_then_url(tmp_path: Path) -> None:
    shared = tmp_path / "shared.properties"
    shared.write_text(
        "# SASL for every client\n"
        "bootstrap.servers=broker-a:9093\n"
        "security.protocol: SASL_SSL\n"
        "sasl.mechanism=PLAIN\n"
        "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \\\n"
        '    username="u" password="p";\n'
        "client.id=from-env\n"
        "consumer.fetch.min.bytes=1000\n"
        "producer.compression.type=zstd\n"
        "session.timeout.ms=6000\n"
    )
    tuning = tmp_path / "tuning.json"
    tuning.write_text(
        json.dumps({"client.id": "from-url-file", "group.id": "from-file", "enable.idempotence": True})
    )
    url = parse_url(f"kafka:///payments?config={tuning}&client.id=from-url")
    env = {ENV_CONFIG: str(shared)}
    consumer = client_config(url, "consumer", environ=env)
    producer = client_config(url, "producer", environ=env)
    assert consumer["bootstrap.servers"] == "broker-a:9093"  # no host in the URL: the file's
    assert consumer["security.protocol"] == producer["security.protocol"] == "SASL_SSL"
    assert producer["sasl.jaas.config"].endswith('username="u" password="p";')
    assert consumer["client.id"] == producer["client.id"] == "from-url"
    assert consumer["group.id"] == "from-file"
    assert consumer["fetch.min.bytes"] == "1000" and "fetch.min.bytes" not in producer
    assert producer["compression.type"] == "zstd" and "compression.type" not in consumer
    # Keys only one client knows stay away from the other (librdkafka would warn about them).
    assert "session.timeout.ms" not in producer and "group.id" not in producer
    assert "enable.idempotence" not in consumer


def test_no_broker_anywhere_is_a_parameter_error() -> None:
    with pytest.raises(ParameterError, match=r"bootstrap\.servers"):
        client_config(parse_url("kafka:///t?group=g"), "consumer", environ={})


def test_config_file_errors_name_the_file_not_the_secrets(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="cannot read kafka config"):
        load_config_file(tmp_path / "missing.properties")
    bad = tmp_path / "bad.properties"
    bad.write_text("sasl.password=hunter2\njust-a-word\n")
    with pytest.raises(ParameterError, match="line 2") as info:
        load_config_file(bad)
    assert "hunter2" not in str(info.value)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(ParameterError, match="one JSON object"):
        load_config_file(listed)


def test_keys_round_trip_as_text_or_base64() -> None:
    text = record_metadata("t", 1, 7, b"acct-7")
    binary = record_metadata("t", 1, 8, b"\xff\x00")
    assert text == {"topic": "t", "partition": 1, "offset": 7, "key": "acct-7"}
    assert binary["key"] is None and key_bytes(binary) == b"\xff\x00"
    assert key_bytes(text) == b"acct-7"
    assert key_bytes(record_metadata("t", 0, 0, None)) is None and key_bytes(None) is None
    json.dumps(binary)  # metadata is copied into JSON output: it must stay JSON


def test_dead_letter_keeps_the_original_bytes_and_says_why_in_headers() -> None:
    meta = record_metadata("payments", 3, 41, b"acct-1")
    item = Malformed(9, "\ufffd oops", "not JSON: ...", meta, b"\xff oops")
    value, key, headers = dead_letter_record(item)
    assert value == b"\xff oops" and key == b"acct-1"
    assert dict(headers) == {
        "adcore.error": b"not JSON: ...",
        "adcore.topic": b"payments",
        "adcore.partition": b"3",
        "adcore.offset": b"41",
        "adcore.line": b"9",
    }
    value, key, headers = dead_letter_record(Malformed(1, "plain", "missing feature 'x'"))  # not from Kafka
    assert value == b"plain" and key is None and [h for h, _ in headers] == ["adcore.error", "adcore.line"]


def test_events_are_keyed_by_record_or_stream() -> None:
    anomaly = AnomalyDetected(
        stream="s1", offset=4, line_number=5, score=9.0, threshold=1.0, model="m@1",
        metadata=record_metadata("t", 0, 4, b"acct-9"),
    )  # fmt: skip
    key, headers = event_record(anomaly)
    assert key == b"acct-9" and dict(headers) == {"adcore.event": b"anomaly.detected", "adcore.stream": b"s1"}
    batch = DetectionCompleted(
        stream="s1", records=1, scored=1, warmup=0, anomalies=0, malformed=0, first_offset=0,
        last_offset=0, model=None, threshold=None, duration_ms=1.0,
    )  # fmt: skip
    assert event_record(batch)[0] == b"s1"
    assert parse_types(None) is None and parse_types("all") is None
    assert parse_types("anomaly.detected, drift.detected") == {"anomaly.detected", "drift.detected"}
    with pytest.raises(ParameterError, match="unknown event type"):
        parse_types("anomaly.found")


def test_endpoints_refuse_mistakes_before_reading() -> None:
    with pytest.raises(ParameterError, match=r"\?group=NAME"):
        open_source("kafka://127.0.0.1:1/t")
    with pytest.raises(ParameterError, match="no meaning for a sink"):
        open_sink("kafka://127.0.0.1:1/t?group=g")
    with pytest.raises(ParameterError, match="no meaning for a source"):
        open_source("kafka://127.0.0.1:1/t?group=g&types=all")
    with pytest.raises(ParameterError, match="grop"):
        open_source("kafka://127.0.0.1:1/t?group=g&grop=x")  # librdkafka names the unknown setting


def test_stream_command_exits_2_on_a_bad_kafka_url() -> None:
    from adcore.cli.main import run_cli

    code = run_cli(["stream", "--algo", "core:hbos", "--source", "kafka://127.0.0.1:1/t", "-q"])
    assert code == 2


def test_listing_plugins_does_not_import_confluent_kafka() -> None:
    code = (
        "import sys\n"
        "from adcore.plugins import PluginHost\n"
        "host = PluginHost().load()\n"
        "reg = host.registry('messaging')['kafka:kafka']\n"
        "assert reg.metadata['kind'] == 'source+sink', reg.metadata\n"
        "assert 'confluent_kafka' not in sys.modules\n"
        "assert 'adcore_kafka.source' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_record_the_client_refuses_is_a_delivery_error() -> None:
    from adcore_kafka.sink import KafkaDeliveryError

    sink = open_sink("kafka://127.0.0.1:1/t?message.max.bytes=1000")  # no broker needed: refused locally
    with pytest.raises(KafkaDeliveryError, match="too large"):
        sink.write_many([b"x" * 5000], [{"key": "a"}])
