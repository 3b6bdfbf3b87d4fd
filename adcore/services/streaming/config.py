"""Stream settings and the retrain policy, validated before the first record is read.

Every mistake is a ``ParameterError`` (exit code 2 on the CLI), raised by
:meth:`StreamConfig.validated`, so a typo in ``--retrain`` never surfaces an hour into a
``tail -f``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from adcore.errors import ParameterError

#: This module imports nothing heavy: the CLI reads its defaults while it starts.
WINDOW_TYPES = ("sliding", "tumbling")

DRIFT_CHOICES = ("none", "ks", "psi", "adwin", "page-hinkley")
DRIFT_ON = ("scores", "features")
_SCORE_ONLY_DRIFT = ("adwin", "page-hinkley")
#: The detector a stream uses without ``--algo`` / ``algo=``: the CLI, ``adcore.open_stream`` and
#: docs/streaming.md all take it from here (a test holds the docs to it). RS-Hash, online: it
#: scores from the first record, follows drift without refits, and on the generated drifting
#: streams of benchmarks/stream_quality.py has about the best average precision of the four
#: online detectors (xStream's is a little higher at a fifth of the speed), far above
#: pysad's and River's (docs/online-detectors.md).
DEFAULT_STREAM_ALGORITHM = "core:rshash"
#: The smallest default warm-up of a window (batch) detector: enough rows for a histogram or
#: a covariance to mean something; a detector that needs more says so (see ``warmup``).
DEFAULT_WARMUP = 50
#: The longest record a stream takes by default (``--max-record-bytes``): a line without a
#: newline must not make a stream buffer without bound.
DEFAULT_MAX_RECORD_BYTES = 1 << 20


@dataclass(frozen=True)
class RetrainPolicy:
    """When the model is refitted on the window: ``never``, ``every:N`` records, ``on-drift``, ``learn``.

    ``learn`` (online detectors only, their default) never refits: the detector learns each
    record right after scoring it. With an online detector, ``every:N`` and ``on-drift`` also
    learn as they score, and refit a fresh model on recent records as they say; ``never``
    freezes the model once fitted (scores with ``decision_function`` only).
    """

    mode: str
    every: int | None = None

    @classmethod
    def parse(cls, text: str) -> RetrainPolicy:
        value = text.strip().lower()
        if value in ("never", "on-drift", "learn"):
            return cls(value)
        if value.startswith("every:"):
            count = value.partition(":")[2]
            if count.isdigit() and int(count) >= 1:
                return cls("every", int(count))
        raise ParameterError(
            f"--retrain must be never, every:N (N >= 1 records), on-drift or learn, got {text!r}"
        )

    def __str__(self) -> str:
        return f"every:{self.every}" if self.mode == "every" else self.mode


@dataclass(frozen=True)
class StreamConfig:
    """What ``adcore stream`` was asked to do (see docs/streaming.md for each option).

    ``warmup`` left ``None`` is sized to the detector by the service (see
    :mod:`~adcore.services.streaming.warmup`); a given one wins. ``retrain`` defaults to ``learn``
    for an online detector (``online``: it has ``score_partial``), to ``every:WINDOW`` for a
    window detector fitted by the stream and to ``never`` for a registry model
    (``from_model``), which is kept as stored unless asked otherwise. ``online`` is ``None``
    while the detector is not known yet (``learn`` is then not checked).
    """

    window: int = 1000
    window_type: str = "sliding"
    warmup: int | None = None
    retrain: RetrainPolicy | str | None = None
    drift: str = "none"
    drift_on: str = "scores"
    drift_params: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 1000
    max_delay_ms: float = 200.0
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    features: list[str] | None = None
    keep_features: bool = False
    save_retrained: str | None = None
    from_model: bool = False
    online: bool | None = None
    p_values: bool = False
    min_anomalies: int = 1
    within: int = 1
    suppress: int = 0
    alert_key: str | None = None

    def validated(self) -> StreamConfig:
        """A copy with defaults filled in; ``ParameterError`` on any inconsistency."""
        _positive("--window", self.window, minimum=2)
        if self.window_type not in WINDOW_TYPES:
            raise ParameterError(f"--window-type must be sliding or tumbling, got {self.window_type!r}")
        warmup = self.warmup
        if warmup is not None:
            _positive("--warmup", warmup, minimum=2)
            if warmup > self.window:
                raise ParameterError(f"--warmup ({warmup}) cannot exceed --window ({self.window})")
        retrain = self.retrain
        if retrain is None:
            if self.online:
                retrain = RetrainPolicy("learn")
            elif self.from_model:
                retrain = RetrainPolicy("never")
            else:
                retrain = RetrainPolicy("every", self.window)
        elif isinstance(retrain, str):
            retrain = RetrainPolicy.parse(retrain)
        if retrain.mode == "learn" and self.online is False:
            raise ParameterError(
                "--retrain learn needs an online detector (one with score_partial; `adcore algos` tags "
                "them online); use never, every:N or on-drift"
            )
        if self.drift not in DRIFT_CHOICES:
            raise ParameterError(f"--drift must be one of {', '.join(DRIFT_CHOICES)}, got {self.drift!r}")
        if self.drift_on not in DRIFT_ON:
            raise ParameterError(f"--drift-on must be scores or features, got {self.drift_on!r}")
        if retrain.mode == "on-drift" and self.drift == "none":
            raise ParameterError(
                "--retrain on-drift needs a drift detector: add --drift ks|psi|adwin|page-hinkley"
            )
        if self.drift in _SCORE_ONLY_DRIFT and self.drift_on == "features":
            raise ParameterError(
                f"--drift {self.drift} follows the score stream only; use --drift-on scores, or ks/psi"
            )
        if self.drift == "none" and self.drift_params:
            raise ParameterError("--drift-param needs --drift")
        _positive("--batch-size", self.batch_size, minimum=1)
        if not isinstance(self.max_delay_ms, (int, float)) or not 0 <= self.max_delay_ms <= 3_600_000:
            raise ParameterError(f"--max-delay-ms must be between 0 and 3600000, got {self.max_delay_ms!r}")
        _positive("--max-record-bytes", self.max_record_bytes, minimum=2)
        if self.features is not None:
            if not self.features or any(not f for f in self.features):
                raise ParameterError("--features needs at least one non-empty name")
            if len(set(self.features)) != len(self.features):
                raise ParameterError("--features names must be distinct")
        if self.save_retrained is not None:
            from adcore.services.registry import check_model_name

            check_model_name(self.save_retrained)
        from adcore.services.streaming.alert_rule import check_alert_rule

        check_alert_rule(self.min_anomalies, self.within, self.suppress)
        if self.alert_key is not None and not str(self.alert_key).strip():
            raise ParameterError("--alert-key needs a field name")
        return dataclasses.replace(self, warmup=warmup, retrain=retrain)

    @property
    def policy(self) -> RetrainPolicy:
        """The retrain policy (after :meth:`validated`)."""
        assert isinstance(self.retrain, RetrainPolicy), "call validated() first"
        return self.retrain


def _positive(option: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ParameterError(f"{option} must be an integer >= {minimum}, got {value!r}")


def parse_drift_params(pairs: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` strings -> a dict; values become int, float or stay text."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"--drift-param must look like KEY=VALUE, got {pair!r}")
        value: Any = raw.strip()
        for convert in (int, float):
            try:
                value = convert(raw)
                break
            except ValueError:
                continue
        out[key.strip()] = value
    return out
