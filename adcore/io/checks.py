"""The checks every input passes, whatever it came from: its values and its columns.

Values: inf is always refused, and NaN too unless a `nan_policy` handles it ("drop" the rows or
fill with the column "median"); each error points at the first offending cell. Columns: names
must be unique, and `columns=` / --columns picks the features by name (or by position when the
names are generated) while the other columns are passed through to the output.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from adcore.errors import DataError
from adcore.io.source import Locator

NAN_POLICIES = ("error", "drop", "median")
_NAN_HINT = (
    "use --nan drop (nan_policy='drop') to skip rows with missing values, "
    "or --nan median (nan_policy='median') to fill them with the column median"
)
# Python types that count as numbers in JSON records and nested lists (None reads as NaN).
_JSON_NUMBER_TYPES = frozenset({int, float, type(None)})


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _check_policy(nan_policy: str) -> None:
    if nan_policy not in NAN_POLICIES:
        raise DataError(f"unknown nan_policy {nan_policy!r}; use one of: {', '.join(NAN_POLICIES)}")


def _first_true(mask: np.ndarray) -> tuple[int, int]:
    """(row, column) of the first True in row-major order, i.e. the first one a reader meets."""
    i = int(np.flatnonzero(mask.any(axis=1))[0])
    return i, int(np.flatnonzero(mask[i])[0])


def _check_chunk(X: np.ndarray, names: Sequence[str], where: Locator, path: str | None, policy: str) -> None:
    """Reject inf always and NaN under policy "error", pointing at the first offending cell."""
    if X.size == 0 or np.isfinite(X).all():
        return
    inf = np.isinf(X)
    if inf.any():
        i, j = _first_true(inf)
        raise DataError(
            f"infinite value ({X[i, j]}; a number beyond float64 range reads as inf) is not allowed "
            "with any nan_policy; replace it with a finite number or remove the row",
            path=path,
            column=names[j],
            **where(i),
        )
    if policy == "error":
        i, j = _first_true(np.isnan(X))
        raise DataError(
            f"missing value (empty, NaN, NA or null); {_NAN_HINT}", path=path, column=names[j], **where(i)
        )


def _apply_policy(
    X: np.ndarray, names: Sequence[str], policy: str, path: str | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply "drop" / "median"; returns the new X and kept_rows (None = every row kept)."""
    if policy == "error" or X.size == 0:
        return X, None
    nan = np.isnan(X)
    if not nan.any():
        return X, None
    if policy == "drop":
        keep = ~nan.any(axis=1)
        kept = np.flatnonzero(keep)
        return X[keep], kept
    X = X.copy()
    for j in np.flatnonzero(nan.any(axis=0)):
        col = X[:, j]
        ok = ~nan[:, j]
        if not ok.any():
            raise DataError(
                "every value is missing, so nan_policy='median' has nothing to fill it with; "
                "leave the column out (--columns) or use --nan drop",
                path=path,
                column=names[j],
            )
        col[~ok] = np.median(col[ok])
    return X, None


def _check_unique(names: Sequence[str], path: str | None, where: str) -> None:
    seen: dict[str, int] = {}
    for j, n in enumerate(names):
        if n in seen:
            raise DataError(
                f"column name {n!r} appears twice in {where} (columns {seen[n] + 1} and {j + 1}); "
                "column names must be unique",
                path=path,
            )
        seen[n] = j


def _describe_names(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:30])
    return shown + (f", ... ({len(names)} in all)" if len(names) > 30 else "")


def _resolve_columns(
    names: list[str], columns: Sequence[str] | None, positional: bool, path: str | None
) -> tuple[list[int], list[int]]:
    """Indices of the feature columns (in the order asked for) and of the passthrough ones.

    `positional`: the names are generated (x0, x1, ...), so "3" may also mean position 3.
    """
    if columns is None:
        return list(range(len(names))), []
    if isinstance(columns, (str, int)):
        columns = [columns]  # type: ignore[list-item]
    wanted = [str(c).strip() for c in columns]
    if not wanted:
        raise DataError("no feature columns selected: --columns / columns= is empty", path=path)
    index = {n: j for j, n in enumerate(names)}
    feat: list[int] = []
    for c in wanted:
        if c in index:
            j = index[c]
        elif positional and c.isascii() and c.isdigit() and int(c) < len(names):  # not "²": int() fails
            j = int(c)
        else:
            pos = " (or their 0-based positions)" if positional else ""
            raise DataError(
                f"unknown column {c!r}; available columns{pos}: {_describe_names(names)}", path=path
            )
        if j in feat:
            raise DataError(f"column {names[j]!r} is selected twice in --columns / columns=", path=path)
        feat.append(j)
    return feat, [j for j in range(len(names)) if j not in feat]


def _feature_hint(columns: Sequence[str] | None, name: str) -> str:
    if columns is None:
        return (
            f"if {name!r} is not a feature, choose the feature columns with --columns (columns=[...]); "
            "the other columns are then passed through to the output"
        )
    return f"fix the value, or leave {name!r} out of --columns"
