"""Kafka URLs and client settings: what a ``kafka://`` URL means, before any connection.

``kafka://HOST:PORT[,HOST:PORT...]/TOPIC[,TOPIC...]?OPTION=VALUE&...``

- adcore's options: ``group`` (the consumer group, required for a source), ``dlq`` (a
  source's dead-letter topic), ``config`` (a librdkafka settings file) and ``types`` (the
  event types an events sink publishes);
- every other query key is a librdkafka setting (``session.timeout.ms=6000``, ``debug=cgrp``),
  so a URL can carry any client setting without a new option for each; librdkafka names
  a misspelt one when the client is built (a ``ParameterError`` too).

Settings are layered, later wins: adcore's defaults, the file named by
``$ADCORE_KAFKA_CONFIG``, the URL's ``config=`` file, the URL's dotted keys. A file is
Java properties (``key=value``, ``#`` comments: the format Kafka's own tools take) or, when
it ends in ``.json``, one JSON object; a key prefixed ``consumer.`` or ``producer.`` applies
to that client only, so one file can hold SASL/TLS settings for both plus a tuning for one.

Parsing happens here, with no ``confluent_kafka`` import, so a bad URL fails with a
``ParameterError`` (exit code 2) before any broker is contacted, and tests need no broker.
Secrets (``sasl.password``) never appear in an error message: only key names do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlparse

from adcore.errors import ParameterError

ENV_CONFIG = "ADCORE_KAFKA_CONFIG"
SCHEME = "kafka"
OPTIONS = ("group", "dlq", "config", "types")
ROLES = ("consumer", "producer")

# At-least-once rests on these: adcore commits explicit offsets after the output is
# acknowledged, so librdkafka must never commit on its own, and the producer must wait
# for all in-sync replicas (idempotence also keeps a retried batch from being duplicated
# or reordered within a partition).
CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
}
PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 5,
}
# Keys only one kind of client understands: a URL or file shared by both roles would
# otherwise make librdkafka warn "... is a consumer property and will be ignored".
_ONLY_FOR = {
    "consumer": (
        "group.",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "max.poll.interval.ms",
        "auto.offset.reset",
        "enable.auto.",
        "auto.commit.",
        "fetch.",
        "partition.assignment.strategy",
        "isolation.level",
        "queued.",
        "enable.partition.eof",
        "check.crcs",
        "consume.callback.max.messages",
    ),
    "producer": (
        "acks",
        "request.required.acks",
        "enable.idempotence",
        "linger.ms",
        "queue.buffering.",
        "batch.",
        "compression.",
        "message.timeout.ms",
        "delivery.",
        "retries",
        "message.send.max.retries",
        "partitioner",
        "transactional.id",
        "transaction.timeout.ms",
        "sticky.partitioning.linger.ms",
        "enable.gapless.guarantee",
        "request.timeout.ms",
        "message.copy.max.bytes",
    ),
}
# Settings a user may not change because the delivery promise depends on them.
REFUSED: dict[str, dict[str, tuple[str, ...]]] = {
    "consumer": {"enable.auto.commit": ("true", "1")},
    "producer": {"acks": ("0", "1")},
}


@dataclass(frozen=True)
class KafkaURL:
    """A parsed ``kafka://`` URL (see the module docstring)."""

    servers: str | None
    topics: tuple[str, ...]
    options: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def topic(self) -> str:
        """The one topic a sink writes to."""
        if len(self.topics) != 1:
            raise ParameterError(f"a kafka sink writes to one topic, got {', '.join(self.topics)}")
        return self.topics[0]


def parse_url(url: str) -> KafkaURL:
    """Split a ``kafka://`` URL; ``ParameterError`` names what is wrong."""
    parsed = urlparse(url)
    if parsed.scheme.lower() != SCHEME:
        raise ParameterError(f"not a kafka:// URL: {url!r}")
    topics = tuple(t for t in (unquote(p).strip() for p in parsed.path.lstrip("/").split(",")) if t)
    if not topics:
        raise ParameterError(f"{url}: name the topic, e.g. kafka://127.0.0.1:9092/payments")
    options: dict[str, str] = {}
    settings: dict[str, str] = {}
    for key, value in parse_qsl(parsed.query, keep_blank_values=True):
        (options if key in OPTIONS else settings)[key] = value
    return KafkaURL(parsed.netloc or None, topics, options, settings)


# ------------------------------------------------------------------------- files
def _parse_properties(text: str, path: str) -> dict[str, str]:
    """Java properties, the subset Kafka's tools use: ``k=v`` or ``k: v``, ``#``/``!`` comments,
    a trailing backslash continues a line."""
    out: dict[str, str] = {}
    logical = ""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not logical and (not stripped or stripped[0] in "#!"):
            continue
        if stripped.endswith("\\") and not stripped.endswith("\\\\"):
            logical += stripped[:-1]
            continue
        logical += stripped
        cut = min((i for i in (logical.find("="), logical.find(":")) if i > 0), default=-1)
        if cut < 0:
            raise ParameterError(f"{path}, line {number}: expected key=value, got {logical[:40]!r}")
        out[logical[:cut].strip()] = logical[cut + 1 :].strip()
        logical = ""
    return out


def load_config_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a librdkafka settings file (properties, or JSON when it ends in ``.json``)."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ParameterError(f"cannot read kafka config {file}: {exc.strerror or exc}") from exc
    if file.suffix.lower() != ".json":
        return _parse_properties(text, str(file))
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ParameterError(f"kafka config {file} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ParameterError(f"kafka config {file} must hold one JSON object of settings")
    return {str(k): _as_setting(v) for k, v in data.items()}


def _as_setting(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------------- layering
def _for_role(layer: Mapping[str, str], role: str) -> dict[str, str]:
    """The keys of one layer meant for ``role``: unprefixed ones plus ``role.``-prefixed ones."""
    out: dict[str, str] = {}
    prefixes = tuple(f"{r}." for r in ROLES)
    for key, value in layer.items():
        if key.startswith(prefixes):
            wanted, _, rest = key.partition(".")
            if wanted == role:
                out[rest] = value
        else:
            out[key] = value
    return out


def client_config(url: KafkaURL, role: str, *, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The librdkafka settings for ``role`` (``consumer`` or ``producer``) of ``url``."""
    if role not in ROLES:
        raise ValueError(f"role must be consumer or producer, got {role!r}")
    env = os.environ if environ is None else environ
    layers: list[Mapping[str, str]] = []
    if env.get(ENV_CONFIG):
        layers.append(load_config_file(env[ENV_CONFIG]))
    if url.options.get("config"):
        layers.append(load_config_file(url.options["config"]))
    layers.append(url.settings)
    user: dict[str, str] = {}
    other = _ONLY_FOR["producer" if role == "consumer" else "consumer"]
    for layer in layers:
        user.update({k: v for k, v in _for_role(layer, role).items() if not k.startswith(other)})
    for key, bad in REFUSED[role].items():
        if str(user.get(key, "")).strip().lower() in bad:
            raise ParameterError(
                f"kafka {role} setting {key}={user[key]} would break at-least-once delivery; "
                "adcore sets it (see adcore-kafka's README)"
            )
    config: dict[str, Any] = dict(CONSUMER_DEFAULTS if role == "consumer" else PRODUCER_DEFAULTS)
    config.update(user)
    if role == "consumer":
        config["enable.auto.commit"] = False
        group = url.options.get("group") or user.get("group.id")
        if group:
            config["group.id"] = group
    if url.servers:
        config["bootstrap.servers"] = url.servers
    if not config.get("bootstrap.servers"):
        raise ParameterError(
            "no Kafka broker: put it in the URL (kafka://HOST:PORT/TOPIC) or set bootstrap.servers "
            f"in the config file (?config=FILE or ${ENV_CONFIG})"
        )
    return config
