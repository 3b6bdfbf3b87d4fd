"""Streaming detection: score JSON records as they arrive, watch for drift, retrain.

The pieces, one role each: :mod:`~adcore.services.streaming.config` (validated settings
and the retrain policy), :mod:`~adcore.services.streaming.windows` (sliding/tumbling training
windows), :mod:`~adcore.services.streaming.records` (lines to features and back),
:mod:`~adcore.services.streaming.batching` (micro-batches with bounded latency),
:mod:`~adcore.services.streaming.model` (the model in effect and its refits),
:mod:`~adcore.services.streaming.service` (the loop that ties them together) and
:mod:`~adcore.services.streaming.endpoints` (URLs, transport objects or plain Python as endpoints).
Transports live behind the messaging port (:mod:`adcore.messaging`), events in
:mod:`adcore.domain.events`. To open a stream as ``adcore stream`` does, with every option checked
first, use :func:`adcore.open_stream` (:mod:`adcore.services.stream`). See docs/streaming.md.
"""

from __future__ import annotations

from adcore.services.streaming.config import RetrainPolicy, StreamConfig
from adcore.services.streaming.model import StreamModel
from adcore.services.streaming.service import StreamingService, StreamStats
from adcore.services.streaming.windows import SlidingWindow, TumblingWindow

__all__ = [
    "RetrainPolicy",
    "SlidingWindow",
    "StreamConfig",
    "StreamModel",
    "StreamStats",
    "StreamingService",
    "TumblingWindow",
]
