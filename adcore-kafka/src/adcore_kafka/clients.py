"""Building confluent-kafka clients with adcore's logging and error reporting.

librdkafka writes its log lines straight to stderr unless given a logger; routed through
``logging`` ("adcore.kafka.client") only warnings and errors reach the terminal (Python's
last-resort handler), so a broker restart is a few lines, not a screenful. Its ``FAIL``
lines (one per failed connection attempt: a hundred in a five-second outage) are demoted
to DEBUG, because ``error_cb`` reports the same failure once.

Errors that librdkafka reports out of band (``error_cb``: broker down, authentication
failed) are logged once per kind *per outage*: the client says when it works again
(:meth:`ErrorTracker.recovered`) and the next outage is reported afresh. librdkafka
reconnects and retries on its own (``reconnect.backoff.ms``, ``message.timeout.ms``), so
these are reports, never retry loops. A *fatal* error (the idempotent producer fenced,
for instance) is kept so the next ``flush``/``poll`` raises it instead of running on in a
broken state.
"""

from __future__ import annotations

import logging
from typing import Any

from adcore.errors import ParameterError
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

log = logging.getLogger("adcore.kafka")
_client_log = logging.getLogger("adcore.kafka.client")


class _DemoteConnectionFailures(logging.Filter):
    """librdkafka's ``FAIL`` lines (one per failed connection attempt) become DEBUG records.

    confluent-kafka logs ``("%s [%s] %s", facility, client name, text)``; the same failure
    reaches :class:`ErrorTracker` through ``error_cb``, which reports it once per outage.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and args and args[0] == "FAIL" and record.levelno > logging.DEBUG:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


_client_log.addFilter(_DemoteConnectionFailures())


class ErrorTracker:
    """Collects librdkafka's out-of-band errors: logs each code once per outage, keeps the fatal one."""

    def __init__(self, who: str) -> None:
        self.who = who
        self.fatal: KafkaError | None = None
        self._seen: set[int] = set()

    def __call__(self, error: KafkaError) -> None:
        if error.fatal():
            self.fatal = self.fatal or error
        if error.code() not in self._seen:
            self._seen.add(error.code())
            log.warning(
                "kafka %s: %s (retrying; further %s errors not shown until it recovers)",
                self.who,
                error.str(),
                error.name(),
            )

    def recovered(self) -> None:
        """The client works again (a commit or a delivery acknowledged): say so once, and
        re-arm the reporting so that the next outage is reported too."""
        if self._seen and self.fatal is None:
            self._seen.clear()
            log.warning("kafka %s: working again", self.who)

    def raise_fatal(self) -> None:
        if self.fatal is not None:
            raise KafkaException(self.fatal)


def _settings_error(role: str, exc: KafkaException) -> ParameterError:
    """librdkafka refused a setting (unknown name, bad value): the user's to fix, exit code 2."""
    error = exc.args[0] if exc.args else exc
    text = error.str() if isinstance(error, KafkaError) else str(error)
    return ParameterError(f"kafka {role} settings: {text}")


def make_consumer(config: dict[str, Any], errors: ErrorTracker) -> Consumer:
    try:
        return Consumer({**config, "logger": _client_log, "error_cb": errors})
    except KafkaException as exc:
        raise _settings_error("consumer", exc) from exc


def make_producer(config: dict[str, Any], errors: ErrorTracker, on_delivery: Any) -> Producer:
    """A producer that reports deliveries only when they fail (one Python call per failure,
    not per record: the happy path stays in C)."""
    try:
        return Producer(
            {
                **config,
                "logger": _client_log,
                "error_cb": errors,
                "on_delivery": on_delivery,
                "delivery.report.only.error": True,
            }
        )
    except KafkaException as exc:
        raise _settings_error("producer", exc) from exc
