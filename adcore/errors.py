"""User-facing error types.

Every error a user can cause (bad input, a wrong parameter, an unknown algorithm, a
tampered model) is one of these. The CLI turns them into exit code 2 with a one-line
message, the server into a 4xx JSON body, each in exactly one place; anything else
is a bug and surfaces as exit code 1 / HTTP 500.
"""

from __future__ import annotations


class AdcoreError(Exception):
    """Base class for errors the user can fix; the message says how."""

    http_status: int = 400


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


class UnknownAlgorithmError(AdcoreError, KeyError):
    """An algorithm name that no loaded plugin registers."""

    http_status = 404

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ParameterError(AdcoreError, ValueError):
    """A detector parameter with a wrong name, type or value."""


class MissingDependencyError(AdcoreError, ImportError):
    """A detector needs a package that is not installed; the message names it."""


class NotFittedError(AdcoreError, ValueError):
    """A detector or model used before `fit`."""


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
