"""Micro-batching with bounded latency.

Scoring 1,000 records in one vectorised call costs about as much as scoring one, so the
service works on batches; but a record must not wait for 999 others that may never come
(``tail -f`` at night). :class:`MicroBatcher` therefore closes a batch when it holds
``batch_size`` records *or* when its oldest record has waited ``max_delay`` seconds, and
it never blocks longer than ``idle_poll`` seconds at a time, so a stop request (SIGTERM)
is noticed promptly even when nothing arrives.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from adcore.messaging import Item, Source


class MicroBatcher:
    """Pulls batches from a :class:`~adcore.messaging.Source`; see the module docstring."""

    def __init__(
        self,
        source: Source,
        *,
        batch_size: int,
        max_delay: float,
        stop: threading.Event | None = None,
        idle_poll: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.batch_size = batch_size
        self.max_delay = max_delay
        self.stop = stop or threading.Event()
        self.idle_poll = idle_poll
        self.clock = clock
        self.ended = False

    def next_batch(self) -> list[Item]:
        """The next batch: full, or due (oldest record waited ``max_delay``), or the last.

        Returns ``[]`` when a stop was requested or the source ended with nothing pending;
        ``ended`` is set once the source reported its end.
        """
        batch: list[Item] = []
        deadline = 0.0
        while len(batch) < self.batch_size and not self.ended:
            if batch:
                timeout = deadline - self.clock()
                if timeout <= 0:
                    break
            elif self.stop.is_set():
                break
            else:
                timeout = self.idle_poll
            got = self.source.poll(self.batch_size - len(batch), min(timeout, self.idle_poll))
            if got is None:
                self.ended = True
                break
            if got and not batch:
                deadline = self.clock() + self.max_delay
            batch.extend(got)
            if batch and self.stop.is_set():
                break  # finish what we hold, promptly
        return batch
