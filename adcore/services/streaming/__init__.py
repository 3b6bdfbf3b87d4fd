"""Streaming detection: score JSON records as they arrive, watch for drift, retrain.

The pieces, one role each: :mod:`~adcore.services.streaming.config` (validated settings
and the retrain policy), :mod:`~adcore.services.streaming.windows` (sliding/tumbling training
windows), :mod:`~adcore.services.streaming.records` (lines to features and back),
:mod:`~adcore.services.streaming.batching` (micro-batches with bounded latency),
:mod:`~adcore.services.streaming.model` (the model in effect and its refits),
:mod:`~adcore.services.streaming.warmup` (when a young model is first fitted and refitted as it grows),
:mod:`~adcore.services.streaming.threshold` (labels for online detectors, following the stream),
:mod:`~adcore.services.streaming.service` (the loop that ties them together) and
:mod:`~adcore.services.streaming.endpoints` (URLs, transport objects or plain Python as endpoints).
Transports live behind the messaging port (:mod:`adcore.messaging`), events in
:mod:`adcore.domain.events`. To open a stream as ``adcore stream`` does, with every option checked
first, use :func:`adcore.open_stream` (:mod:`adcore.services.stream`). See docs/streaming.md.
"""

from __future__ import annotations

import importlib
from typing import Any

# Names resolved on first use, so that reading a default from ``streaming.config`` (the CLI does,
# while it starts) imports no numpy.
_EXPORTS = {
    "RetrainPolicy": "config",
    "StreamConfig": "config",
    "StreamModel": "model",
    "StreamingService": "service",
    "StreamStats": "service",
    "SlidingWindow": "windows",
    "TumblingWindow": "windows",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
