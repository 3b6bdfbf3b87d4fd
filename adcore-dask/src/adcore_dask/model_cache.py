"""The model, loaded once per worker process rather than shipped with every task.

Tasks carry a :class:`ModelRef` (``name@version``, the store URL and the artifact's expected
SHA-256): a few hundred bytes, where a pickled forest can be megabytes per task. The first
task on a worker loads the model from the store with ``adcore.services.models.load_model``
(which verifies the artifact's checksum before unpickling it) and keeps it in this module's
cache for the worker's lifetime; later tasks reuse it. A record whose checksum is not the
one the client resolved (the version was replaced meanwhile) is refused.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from adcore.errors import IntegrityError

_KEEP = 4  # models kept per worker: a few jobs with different models may share a cluster


@dataclass(frozen=True)
class ModelRef:
    """What a task knows of the model: enough to load and verify it, nothing more."""

    ref: str
    store: str
    sha256: str | None


_cache: dict[ModelRef, Any] = {}
_lock = threading.Lock()
_loads: dict[ModelRef, int] = {}


def get_model(model: ModelRef) -> Any:
    """The loaded :class:`adcore.services.models.Model` for ``model``, from this process's cache."""
    with _lock:  # a worker with several threads loads once, not once per thread
        cached = _cache.get(model)
        if cached is not None:
            return cached
        from adcore.services.models import load_model

        loaded = load_model(model.ref, model.store)
        found = loaded.record.sha256 if loaded.record is not None else None
        if model.sha256 is not None and found != model.sha256:
            from adcore.services.registry import redact_url

            raise IntegrityError(
                f"{model.ref} in {redact_url(model.store)} changed while the job ran (checksum {found}, "
                f"expected {model.sha256}); run the job again"
            )
        while len(_cache) >= _KEEP:
            _cache.pop(next(iter(_cache)))
        _cache[model] = loaded
        _loads[model] = _loads.get(model, 0) + 1
        return loaded


def loads(model: ModelRef) -> int:
    """How many times this process loaded ``model`` (1 while cached; reported with each task, so
    a job can say how many workers loaded it, and a test can check it was not once per task)."""
    return _loads.get(model, 0)


def preload(model: ModelRef) -> int:
    """Load ``model`` into this worker's cache now (``Client.run`` calls it on every worker);
    returns the PID. A benchmark warms workers this way so timings are scoring, not loading."""
    import os

    get_model(model)
    return os.getpid()
