"""Loaded models, kept between requests: the store's index is asked every time, the artifact once.

Loading a model means reading its artifact, checking its SHA-256 and unpickling it:
too slow to repeat per request. The index lookup is cheap and is what makes the cache
correct, so each request resolves ``name`` / ``name@version`` in the store first (a new
version saved by another process is used at once; a deleted one is a 404), then takes
the loaded model from an LRU keyed by ``name@version`` and checksum. Concurrent first
requests for one model load it once (a lock per reference).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from adcore.server.stores import ThreadStores
from adcore.services.registry import ModelRecord, parse_model_ref


class ModelCache:
    """An LRU of loaded :class:`adcore.services.models.Model` objects."""

    def __init__(self, size: int, *, on_load: Callable[[Any], None] | None = None) -> None:
        self.size = size
        self.on_load = on_load
        self._models: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, str], threading.Lock] = {}

    def resolve(self, ref: str, stores: ThreadStores) -> ModelRecord:
        """The index entry of ``ref`` (``ModelNotFoundError`` when the store has none)."""
        name, version = parse_model_ref(ref)
        with stores.use() as store:
            return store.get(name, version)

    def get(self, ref: str, stores: ThreadStores) -> Any:
        """The loaded model ``ref`` points at now."""
        from adcore.services.models import load_model

        record = self.resolve(ref, stores)
        key = (record.ref, record.sha256)
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
                return model
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                model = self._models.get(key)
            if model is None:
                with stores.use() as store:
                    model = load_model(record.ref, store=store)
                if self.on_load is not None:
                    self.on_load(model)
                with self._lock:
                    self._models[key] = model
                    while len(self._models) > self.size:
                        self._models.popitem(last=False)
        with self._lock:
            self._loading.pop(key, None)
        return model

    def forget(self, name: str, version: int | None = None) -> None:
        with self._lock:
            for key in list(self._models):
                ref_name, _, ref_version = key[0].rpartition("@")
                if ref_name == name and (version is None or ref_version == str(version)):
                    del self._models[key]
