"""adcore-kafka: score Kafka streams with ``adcore stream``, scaled out with consumer groups.

Registers the ``kafka`` scheme of the messaging port: a source (a consumer group member
that commits offsets only after the output was acknowledged), a sink for scored records,
events (``--events``) and dead letters. Registration is lazy ("module:attr"), so listing
plugins or running any other command never imports confluent_kafka. See README.md.
"""

from __future__ import annotations

from typing import Any

from adcore import hookimpl

__version__ = "0.1.0"


@hookimpl
def register_messaging(register: Any) -> None:
    register(
        "kafka",
        "adcore_kafka.endpoints:open_kafka",
        kind="source+sink",
        summary="Kafka topics: kafka://HOST:PORT/TOPIC?group=NAME (source), scored records, "
        "events and dead letters (sink); at-least-once, scaled out by consumer groups",
        needs=("confluent-kafka",),
    )
