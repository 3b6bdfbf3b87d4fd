"""One open model store per worker thread, reused across requests.

Opening the embedded store costs a SQLite connection, two PRAGMAs and a schema check:
more than the index lookup a request needs, and SQLite connections may not be shared
between threads. So each worker thread keeps its own open store. A handle that fails
with anything but a user error (a locked or vanished database, a dropped PostgreSQL
connection) is closed and reopened on the next call. Readiness does not use this: it
opens a fresh store each time, because it must notice a store that went away.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from adcore.errors import AdcoreError, StoreError
from adcore.services.registry import open_store


class ThreadStores:
    """``with stores.use() as store:`` gives this thread's open store for ``url``."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self._local = threading.local()

    @contextlib.contextmanager
    def use(self) -> Iterator[Any]:
        store = getattr(self._local, "store", None)
        if store is None:
            store = open_store(self.url)
            self._local.store = store
        try:
            yield store
        except AdcoreError as exc:
            if isinstance(exc, StoreError):
                self._drop(store)
            raise
        except Exception:
            self._drop(store)
            raise

    def _drop(self, store: Any) -> None:
        self._local.store = None
        with contextlib.suppress(Exception):
            store.close()
