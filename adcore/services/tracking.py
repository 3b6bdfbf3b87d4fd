"""Experiment tracking: hand a command's events to a tracker such as MLflow.

``adcore fit --mlflow`` and ``adcore bench --mlflow`` ask for one named monitor (adcore-mlflow
registers ``mlflow`` through ``register_monitors``) and give it the events the command made
(``model.saved``, ``bench.completed``); ``adcore stream --monitor mlflow`` reaches the same
monitor through the stream's event bus. Unlike a stream's monitors, a tracker the user asked
for by flag must not fail quietly: its error ends the command with exit code 2, after the
model was stored, and says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from adcore.errors import AdcoreError, TrackingError


def track(events: Iterable[Any], tracker: str = "mlflow", *, done: str = "") -> None:
    """Record ``events`` with the monitor ``tracker``; ``done`` says what already happened.

    An unknown tracker is the plugin host's one-line error naming the distribution to install
    (``pip install adcore-mlflow``); a tracker that raises becomes :class:`TrackingError`.
    """
    from adcore.plugins import get_host

    registration = get_host().resolve("monitor", tracker)
    monitor = registration.load()()
    try:
        for event in events:
            monitor.record(event)
    except AdcoreError:
        raise
    except Exception as exc:  # a tracker's own failure (server down, bad URI): one line, exit 2
        before = f"{done}, but " if done else ""
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise TrackingError(f"{before}{tracker} tracking failed: {type(exc).__name__}: {first}") from exc
    finally:
        close = getattr(monitor, "close", None)
        if callable(close):
            close()
