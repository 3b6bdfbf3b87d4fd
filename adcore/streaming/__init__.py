"""Streaming detection: score JSON records as they arrive, watch for drift, retrain.

The pieces, one role each: :mod:`~adcore.streaming.config` (validated settings and the
retrain policy), :mod:`~adcore.streaming.windows` (sliding/tumbling training windows),
:mod:`~adcore.streaming.records` (lines to features and back), :mod:`~adcore.streaming.batching`
(micro-batches with bounded latency), :mod:`~adcore.streaming.model` (the model in effect and
its refits), :mod:`~adcore.streaming.service` (the loop that ties them together) and
:mod:`~adcore.streaming.endpoints` (URLs, transport objects or plain Python as endpoints).
Transports live behind the messaging port (:mod:`adcore.messaging`), events in
:mod:`adcore.events`. To open a stream as ``adcore stream`` does, with every option checked
first, use :func:`adcore.open_stream` (:mod:`adcore.services.stream`). See docs/streaming.md.
"""

from __future__ import annotations

from adcore.streaming.config import RetrainPolicy, StreamConfig
from adcore.streaming.model import StreamModel
from adcore.streaming.service import StreamingService, StreamStats
from adcore.streaming.windows import SlidingWindow, TumblingWindow

__all__ = [
    "RetrainPolicy",
    "SlidingWindow",
    "StreamConfig",
    "StreamModel",
    "StreamStats",
    "StreamingService",
    "TumblingWindow",
]
