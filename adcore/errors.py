"""User-facing error types.

Every error a user can cause (bad input, a wrong parameter, an unknown algorithm, a
tampered model) is one of these. The CLI turns them into exit code 2 with a one-line
message, the server into a 4xx JSON body, each in exactly one place; anything else
is a bug and surfaces as exit code 1 / HTTP 500.

They follow scikit-learn's conventions, so code written against scikit-learn catches them:
data and parameter errors are ``ValueError``s, and ``TypeError``s too where Python would
raise one (:class:`ParameterTypeError`, :class:`DataTypeError`); :class:`NotFittedError` is
scikit-learn's own ``NotFittedError`` subclass whenever scikit-learn is loaded.
"""

from __future__ import annotations

import importlib.machinery
import sys
from typing import Any


class AdcoreError(Exception):
    """Base class for errors the user can fix; the message says how.

    ``algorithm`` and ``parameter`` name the detector (``pyod:iforest``) and its parameter
    when the error concerns one and they are known (the server can report them as fields).
    """

    http_status: int = 400
    algorithm: str | None = None
    parameter: str | None = None


class DataError(AdcoreError, ValueError):
    """Input data that cannot be read or used: names the file, line/row and column when known.

    `line` is the 1-based line in a text file (what an editor shows); `row` the 0-based
    row index in an array or a columnar file.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        row: int | None = None,
        column: str | int | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.row = row
        self.column = column
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}" if isinstance(column, str) else f"column {column}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class SinkWriteError(DataError):
    """A sink the OS refuses to write (a full disk, an I/O error): the user's to fix, exit 2."""


class UnknownAlgorithmError(AdcoreError, KeyError):
    """An algorithm name that no loaded plugin registers."""

    http_status = 404

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ParameterError(AdcoreError, ValueError):
    """A detector parameter with a wrong name, type or value."""


class ParameterTypeError(ParameterError, TypeError):
    """A parameter the detector's library refused with a ``TypeError`` (a wrong type).

    Still a :class:`ParameterError` (and so a ``ValueError``, as scikit-learn's own
    ``InvalidParameterError`` is both): ``except ValueError`` and ``except TypeError`` catch it.
    """


class MissingDependencyError(AdcoreError, ImportError):
    """A detector needs a package that is not installed; the message names it."""


class DataTypeError(DataError, TypeError):
    """Input of a type that cannot be used at all (sparse matrices, objects that are not numbers).

    A ``TypeError`` where Python and scikit-learn raise one, and a :class:`DataError` (a
    ``ValueError``) for everything that catches adcore's data errors.
    """


class _NotFittedBase(ValueError, AttributeError):
    """Stands in for scikit-learn's ``NotFittedError`` (same bases) until scikit-learn is loaded."""


class NotFittedError(AdcoreError, _NotFittedBase):
    """A detector or model used before `fit`.

    A ``ValueError`` and an ``AttributeError``, as scikit-learn defines its own; and a subclass
    of scikit-learn's ``sklearn.exceptions.NotFittedError`` as soon as scikit-learn is loaded,
    so ``except sklearn.exceptions.NotFittedError`` and scikit-learn's estimator checks catch it.
    Importing this module never imports scikit-learn (a second of start-up): the class is
    defined on a stand-in base with the same bases as scikit-learn's, and takes scikit-learn's
    class as its base (``__bases__`` assignment; the layouts are the same) either now, when
    scikit-learn is already loaded, or the moment ``sklearn.exceptions`` finishes loading
    (:class:`_AdoptSklearnNotFitted`). Anything that can test against scikit-learn's class has
    loaded it first, so every such test sees the subclass; identity never changes, so
    ``from adcore.errors import NotFittedError`` at the top of a module stays cheap and correct.
    """

    def __init__(self, *args: Any) -> None:
        _adopt_sklearn_not_fitted()  # a fallback where the import could not be watched
        super().__init__(*args)


class PluginError(AdcoreError):
    """A plugin that could not be loaded (raised only in strict mode, else reported)."""


class ModelNotFoundError(AdcoreError, KeyError):
    """A model reference (`name` or `name@version`) that the store does not hold."""

    http_status = 404

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class IntegrityError(AdcoreError):
    """A stored artifact whose checksum does not match the index: refused, never loaded."""

    http_status = 409


class SchemaMismatchError(DataError):
    """Data whose features differ from those the model was trained on."""


class StoreError(AdcoreError):
    """A model store URL or backend that cannot be used."""


class ServiceUnavailableError(AdcoreError):
    """A service adcore depends on (PostgreSQL, S3, Redis, MLflow, an alert receiver) is down
    or its circuit breaker is open (:mod:`adcore.services.resilience`).

    Not the request's fault and not a bug: the server answers 503 with ``Retry-After``
    (``retry_after`` seconds, rounded up), the CLI exits 2 with the message. ``dependency``
    names the kind of service (``postgres``, ``s3``, ``redis``...).
    """

    http_status = 503

    def __init__(self, message: str, *, retry_after: float | None = None, dependency: str | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.dependency = dependency

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}

    @property
    def retry_after_s(self) -> int:
        """Whole seconds to wait, at least 1 (``Retry-After`` takes an integer)."""
        import math

        return max(1, math.ceil(self.retry_after or 1))

    @property
    def extra(self) -> dict[str, Any]:
        """Fields the server adds to the JSON error: when to retry, and which service."""
        fields: dict[str, Any] = {"retry_after": self.retry_after_s}
        if self.dependency:
            fields["dependency"] = self.dependency
        return fields


class StoreUnavailableError(StoreError, ServiceUnavailableError):
    """A store that cannot be used right now: its database or object store does not answer,
    or its index vanished, was replaced or is corrupt.

    Not the request's fault, so the server answers 503 (a load balancer then stops sending
    traffic to the replica) and readiness fails; the CLI exits 2 with the message.
    """


class StoreNotFoundError(StoreError):
    """A read (list, show, score, explain, remove) named a store that does not exist.

    Reads never create a store: a mistyped ``--store`` must fail naming the path, not leave an
    empty store there and report "no models".
    """


_SKLEARN_EXCEPTIONS = "sklearn.exceptions"


def _adopt_sklearn_not_fitted() -> bool:
    """Make :class:`NotFittedError` subclass scikit-learn's, if that is loaded; True when it does."""
    module = sys.modules.get(_SKLEARN_EXCEPTIONS)
    theirs = getattr(module, "NotFittedError", None)
    if theirs is None:
        return False
    if not issubclass(NotFittedError, theirs):
        NotFittedError.__bases__ = (AdcoreError, theirs)
    return True


class _AfterExec:
    """Wraps a module's loader: runs it, then adopts scikit-learn's NotFittedError as a base.

    The module gets its own loader back once it has run (``__loader__``, ``__spec__.loader``),
    so nothing afterwards can tell it was imported through this wrapper.
    """

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        try:
            self._loader.exec_module(module)
        finally:
            module.__loader__ = self._loader
            if getattr(module, "__spec__", None) is not None:
                module.__spec__.loader = self._loader
        _adopt_sklearn_not_fitted()


class _AdoptSklearnNotFitted:
    """Watches for ``sklearn.exceptions`` being imported (one string comparison per import).

    It finds the module as the standard path finder would and wraps the loader; where that
    finder cannot find it (an unusual install), it steps aside and the import goes on as usual
    (:class:`NotFittedError` then adopts scikit-learn's class when it is first raised). It
    removes itself once scikit-learn's exceptions are loaded. A meta path finder by protocol
    (``find_spec``): subclassing ``importlib.abc``'s would cost the CLI 9 ms of imports.
    """

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != _SKLEARN_EXCEPTIONS:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _AfterExec(spec.loader)
        return spec


if not _adopt_sklearn_not_fitted():
    sys.meta_path.insert(0, _AdoptSklearnNotFitted())


class TrackingError(AdcoreError):
    """A tracker the user asked for (``--mlflow``) could not record the run: its server is
    down or refused it. The work itself is done (a fit's model is stored); the message says so."""

    http_status = 503
