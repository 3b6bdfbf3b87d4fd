"""Numba's on-disk cache for PyOD's kernels: compile once per machine, not once per process.

PyOD decorates its kernels with ``@njit`` but without ``cache=True``, so every new process
compiles them again on their first call: 5 to 8 s of a ``pyod:hbos`` run on the example
data, for a fit that then takes milliseconds. Numba can keep the machine code on disk
(``Dispatcher.enable_caching``) and load it in a later process in a fraction of that time.

adcore turns that cache on for the kernels of the PyOD modules it imports (see
:mod:`adcore_pyod.models`, through which every registered PyOD detector is resolved), in
``platformdirs.user_cache_dir("adcore")/numba``, or in ``NUMBA_CACHE_DIR`` when the user set
it (numba's own variable, so it wins here as it does for numba). Three promises:

* **Nothing breaks without it.** A cache directory that cannot be created or written
  (read-only home, a file in the way, a full disk) leaves the kernels as PyOD made them:
  compiled in memory, in every process. The cache is an optimisation, so neither setting
  it up, reading it nor writing it ever fails a fit.
* **Concurrent processes are safe.** Numba writes every index and data file to a temporary
  name and renames it into place, so a reader never sees half a file. Numba's ``save`` is a
  read-modify-write of the index, though: two processes compiling *different* signatures of
  one kernel at once could both claim data file ``1`` and leave an index entry pointing at
  the other's code (numba issues #4807, #10128). Saves here hold an exclusive ``flock`` on
  the cache folder, and a loaded entry whose signature is not the one asked for is ignored.
* **Stale code is never loaded.** Numba keys each entry by the kernel's source file hash,
  its bytecode, numba's version, the Python version and the CPU, so upgrading PyOD or numba
  or sharing a home folder between machines recompiles instead of loading the wrong code.

Only ``numba`` internals that ``Dispatcher.enable_caching`` itself uses are touched (the
dispatcher's cache object and numba's ``FunctionCache`` and locator classes); if a future
numba changes them, :func:`enable_caching` degrades to no caching instead of failing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

#: numba's own variable for its cache folder: when set, adcore uses it too.
NUMBA_CACHE_DIR_ENV = "NUMBA_CACHE_DIR"
#: The lock file a save holds (one per cache sub-folder, next to the index files).
LOCK_NAME = ".adcore-numba.lock"

_lock = threading.Lock()
_scanned: set[str] = set()
_modules_seen: dict[str, int] = {}  # package -> len(sys.modules) at its last scan


def cache_dir() -> Path:
    """Where compiled kernels are kept: ``$NUMBA_CACHE_DIR``, else ``<user cache dir>/adcore/numba``."""
    configured = os.environ.get(NUMBA_CACHE_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("adcore", appauthor=False)) / "numba"


def writable(path: Path) -> bool:
    """Whether ``path`` exists or can be made, and takes a file (numba's own test, done once here)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def _exclusive(folder: str) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``folder`` (POSIX ``flock``; no lock where there is none)."""
    try:
        import fcntl
    except ImportError:  # Windows: numba's own guard against concurrent access is all there is
        yield
        return
    fd = os.open(os.path.join(folder, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@lru_cache(maxsize=4)
def _cache_class(folder: str) -> type:
    """numba's ``FunctionCache`` in ``folder``, with serialised saves and failures that never raise.

    Built on first use, because it subclasses numba's classes and numba must not be
    imported at registration.
    """
    from numba.core import caching

    class Locator(caching.UserProvidedCacheLocator):
        """numba's locator for ``NUMBA_CACHE_DIR``, pointed at ``folder`` without setting numba's
        process-wide ``config.CACHE_DIR`` (which would move every other library's cache too)."""

        def __init__(self, py_func: Any, py_file: str) -> None:
            super().__init__(py_func, py_file)
            self._cache_path = os.path.join(folder, self.get_suitable_cache_subpath(py_file))

        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> Any:
            # the grandparent's: exists and writable, else None (the parent also demands CACHE_DIR)
            return super(caching.UserProvidedCacheLocator, cls).from_function(py_func, py_file)

    class Impl(caching.CompileResultCacheImpl):
        _locator_classes = [Locator]  # only this folder: never the installed package's __pycache__

    class AdcoreFunctionCache(caching.FunctionCache):
        _impl_class = Impl

        def load_overload(self, sig: Any, target_context: Any) -> Any:
            try:
                cres = super().load_overload(sig, target_context)
            except Exception as exc:  # an unreadable or corrupt entry: compile, as without a cache
                log.debug("numba cache: not loaded for %s: %s", self._name, exc)
                return None
            if cres is not None:
                from numba.core import sigutils

                args, _ = sigutils.normalize_signature(sig)
                if tuple(cres.signature.args) != tuple(args):  # see the module docstring
                    log.debug("numba cache: entry for %s has another signature, ignored", self._name)
                    return None
            return cres

        def save_overload(self, sig: Any, data: Any) -> None:
            try:
                with _exclusive(self._cache_path):
                    super().save_overload(sig, data)
            except Exception as exc:  # read-only now, disk full...: the code still runs, uncached
                log.debug("numba cache: not saved for %s: %s", self._name, exc)

    return AdcoreFunctionCache


def enable_caching(dispatcher: Any, folder: Path | None = None) -> bool:
    """Give one numba dispatcher the on-disk cache in ``folder`` (default :func:`cache_dir`).

    Returns whether it caches now. A dispatcher that already caches (``cache=True``, or
    done before) is left as it is; one that cannot (unwritable folder, a function without a
    source file, a numba without these internals) keeps compiling in memory.
    """
    try:
        from numba.core.caching import NullCache
    except ImportError:
        return False
    current = getattr(dispatcher, "_cache", None)
    if current is None or getattr(dispatcher, "py_func", None) is None:
        return False
    if not isinstance(current, NullCache):
        return True
    folder = folder or cache_dir()
    if not writable(folder):
        return False
    try:
        dispatcher._cache = _cache_class(str(folder))(dispatcher.py_func)
    except Exception as exc:  # numba: "no locator available", or its internals changed
        log.debug("numba cache: not enabled for %r: %s", dispatcher, exc)
        return False
    return True


def dispatchers(module: ModuleType) -> list[Any]:
    """The numba dispatchers a module defines (not the ones it imports from elsewhere)."""
    try:
        from numba.core.dispatcher import Dispatcher
    except ImportError:
        return []
    found = []
    for value in list(vars(module).values()):
        if isinstance(value, Dispatcher) and getattr(value.py_func, "__module__", None) == module.__name__:
            found.append(value)
    return found


def enable_for_loaded(package: str = "pyod") -> int:
    """Enable the cache for every kernel of ``package``'s modules imported so far; return how many.

    Scans each module once (a few microseconds), so calling it after every import is cheap.
    Call it after importing the module and before the first fit: numba compiles at the
    first call, and a kernel compiled before caching was enabled stays uncached in this
    process (it is cached from the next one on).
    """
    if "numba" not in sys.modules or len(sys.modules) == _modules_seen.get(package):
        return 0  # no numba, so no kernel; or nothing imported since the last scan
    with _lock:
        _modules_seen[package] = len(sys.modules)
        names = [
            name
            for name in list(sys.modules)
            if (name == package or name.startswith(package + ".")) and name not in _scanned
        ]
        if not names:
            return 0
        folder = cache_dir()
        if not writable(folder):
            log.debug("numba cache: %s is not writable, kernels compile in every process", folder)
            return 0
        enabled = 0
        for name in names:
            module = sys.modules.get(name)
            _scanned.add(name)
            if module is None:
                continue
            enabled += sum(enable_caching(d, folder) for d in dispatchers(module))
    return enabled
