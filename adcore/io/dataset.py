"""`Dataset`: a validated feature matrix, and building one from arrays and DataFrames in memory.

Files become Datasets through :func:`adcore.data.read_dataset`; arrays, nested lists and pandas
objects through `Dataset.from_array`. Both end in the same checks (`adcore.io.checks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adcore.errors import DataError, DataTypeError
from adcore.io.checks import (
    _apply_policy,
    _check_chunk,
    _check_policy,
    _check_unique,
    _first_true,
    _resolve_columns,
)
from adcore.io.source import _row_locator


@dataclass
class Dataset:
    """Feature matrix plus what is needed to write one output row per input row.

    `X` is float64, 2-D, C-contiguous and finite once the nan policy ran. `passthrough` holds the
    non-feature columns (e.g. an id) with one value per INPUT row, including dropped rows, so the
    output can be aligned with the input; `kept_rows` says which input rows are in `X` when
    nan_policy="drop" removed some (None = all). `first_row` is the 0-based input row of this
    dataset's first row: 0 except for chunks from `iter_dataset_chunks`.
    """

    X: np.ndarray
    feature_names: list[str]
    source: str | None = None
    passthrough: dict[str, list] = field(default_factory=dict)
    kept_rows: np.ndarray | None = None
    n_input_rows: int = 0
    first_row: int = 0

    def __post_init__(self) -> None:
        if self.X.ndim != 2:
            raise ValueError(f"Dataset.X must be 2-D, got shape {self.X.shape}")
        if len(self.feature_names) != self.X.shape[1]:
            raise ValueError(f"{len(self.feature_names)} feature names for {self.X.shape[1]} columns")
        if self.kept_rows is None and self.n_input_rows == 0:
            self.n_input_rows = self.X.shape[0]

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    def expand(self, values: np.ndarray, fill: Any) -> np.ndarray:
        """Map one value per kept row back to one per input row; dropped rows get `fill`.

        Output files have one row per input row (score NaN, label -1 for dropped rows), so callers
        expand before writing. The dtype is wide enough for both (int labels with fill -1 stay int).
        """
        values = np.asarray(values)
        if values.shape[:1] != (self.n_samples,):
            raise ValueError(f"expand() needs {self.n_samples} values (one per kept row), got {values.shape}")
        if self.kept_rows is None:
            return values
        out = np.full((self.n_input_rows, *values.shape[1:]), fill, dtype=np.result_type(values, fill))
        out[self.kept_rows] = values
        return out

    @classmethod
    def from_array(
        cls,
        X: Any,
        feature_names: Sequence[str] | None = None,
        *,
        source: str | None = None,
        nan_policy: str = "error",
    ) -> Dataset:
        """Build a Dataset from a numpy array, a list of lists or a pandas DataFrame.

        A 1-D array is one feature. For a DataFrame, `feature_names` selects the feature columns
        (the others become passthrough); without it every column must be numeric. pandas is never
        imported unless X already is a pandas object.
        """
        _check_policy(nan_policy)
        passthrough: dict[str, list] = {}
        if type(X).__module__.startswith("pandas") and hasattr(X, "dtypes"):
            arr, names, passthrough = _from_dataframe(X, feature_names, source)
            source = source or "dataframe"
        else:
            arr = _numeric_array(X, source)
            if arr.ndim == 1:
                arr = arr.reshape(-1, 1)
            if arr.ndim != 2:
                raise DataError(
                    f"expected a 2-D array (rows x features) or 1-D (one feature), got shape {arr.shape}",
                    path=source,
                )
            names = _names_for(arr.shape[1], feature_names, source)
            source = source or "array"
        _check_not_empty(arr.shape, source)
        path = None if source in ("array", "dataframe") else source
        n_input = arr.shape[0]
        _check_chunk(arr, names, _row_locator(0), path, nan_policy)
        arr, kept = _apply_policy(arr, names, nan_policy, path)
        return cls(
            np.ascontiguousarray(arr, dtype=np.float64),
            names,
            source=source,
            passthrough=passthrough,
            kept_rows=kept,
            n_input_rows=n_input,
        )


def _names_for(n: int, feature_names: Sequence[str] | None, path: str | None) -> list[str]:
    if feature_names is None:
        return [f"x{j}" for j in range(n)]
    names = [str(c) for c in feature_names]
    if len(names) != n:
        raise DataError(f"{len(names)} feature names given for {n} columns", path=path)
    _check_unique(names, path, "feature_names")
    return names


def _check_not_empty(shape: tuple[int, ...], source: str | None) -> None:
    """No rows or no columns: refused in scikit-learn's words ("0 sample(s) (shape=(0, 3)) ...")."""
    for axis, what in ((0, "sample"), (1, "feature")):
        if shape[axis] == 0:
            raise DataError(
                f"no data: 0 {what}(s) (shape={shape}) while a minimum of 1 is required.", path=source
            )


def _is_number(value: Any) -> bool:
    """A value an object array or nested list may hold as a number (None reads as NaN; bools do not count)."""
    if value is None:
        return True
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, (int, float, np.integer, np.floating))


def _numeric_array(X: Any, source: str | None) -> np.ndarray:
    """numpy array, nested lists or array-like -> float64 array.

    Numbers held as Python objects (``np.array([[1, 2]], dtype=object)``) are converted, as
    scikit-learn does; strings, bools, complex numbers, sparse matrices and other objects are
    refused, each with a message that says why (scikit-learn's words where its checks look for
    them: "Complex data not supported", "Sparse data was passed", a TypeError for objects).
    """
    if hasattr(X, "toarray") and type(X).__module__.startswith("scipy.sparse"):
        raise DataTypeError(
            "Sparse data was passed for X, but dense data is required. "
            "Use '.toarray()' to convert to a dense numpy array.",
            path=source,
        )
    if isinstance(X, np.ndarray):
        arr = X
    else:
        try:
            arr = np.asarray(X)
        except ValueError as e:  # ragged nested lists
            raise DataError(
                f"rows have different lengths, cannot make a 2-D array ({e})", path=source
            ) from None
    kind = arr.dtype.kind
    if kind in "iuf":
        return arr.astype(np.float64, copy=False)
    if arr.dtype.names:
        return _structured_to_float(arr, source)[0]
    if kind == "b":
        raise DataError(
            "booleans are not numbers here; convert them first, e.g. X.astype(float)", path=source
        )
    if kind == "c":
        raise DataError(
            f"Complex data not supported (dtype {arr.dtype}); give real numbers, e.g. X.real or abs(X)",
            path=source,
        )
    if kind == "O" or (kind in "US" and not isinstance(X, np.ndarray)):
        return _objects_to_float(X, source)
    raise DataError(
        f"the array is not numeric (dtype {arr.dtype}); give ints or floats, e.g. X.astype(float)",
        path=source,
    )


def _objects_to_float(X: Any, source: str | None) -> np.ndarray:
    """Nested lists or an object array of numbers -> float64; the first non-number is named."""
    obj = np.asarray(X, dtype=object)
    if obj.ndim not in (1, 2):
        raise DataError(
            f"expected a 2-D array (rows x features), got shape {obj.shape} (dtype object)", path=source
        )
    bad = ~np.frompyfunc(_is_number, 1, 1)(obj).astype(bool)
    if not bad.any():
        return np.array(obj.tolist(), dtype=np.float64)  # None -> NaN
    i, j = _first_true(bad.reshape(len(obj), -1))
    value = obj.reshape(len(obj), -1)[i, j]
    if isinstance(value, (str, bytes, bool, np.bool_, complex, np.complexfloating)):
        raise DataError(f"{value!r} is not a number", path=source, row=i, column=j)
    # What float() says of it: a TypeError, so scikit-learn's dtype check recognises it.
    raise DataTypeError(
        f"{value!r} is not a number (float() argument must be a string or a real number, "
        f"not {type(value).__name__!r})",
        path=source,
        row=i,
        column=j,
    )


def _structured_to_float(arr: np.ndarray, path: str | None) -> tuple[np.ndarray, list[str]]:
    """A structured array (named numeric fields, e.g. from np.save of a record array) -> columns."""
    names = list(arr.dtype.names or ())
    for n in names:
        ft = arr.dtype.fields[n][0]
        if ft.kind not in "iuf" or ft.shape:
            raise DataError(
                f"field is not a numeric scalar (dtype {ft}); save numeric fields only", path=path, column=n
            )
    flat = arr.reshape(-1)
    X = np.empty((flat.shape[0], len(names)), dtype=np.float64)
    for j, n in enumerate(names):
        X[:, j] = flat[n]
    return X, names


def _from_dataframe(
    df: Any, feature_names: Sequence[str] | None, source: str | None
) -> tuple[np.ndarray, list[str], dict[str, list]]:
    from pandas.api import types as pdt  # pandas is installed: the caller built a pandas object

    if getattr(df, "ndim", 2) == 1:  # Series
        df = df.to_frame(name=df.name if df.name is not None else "x0")
    names = [str(c) for c in df.columns]
    _check_unique(names, source, "the DataFrame")
    feat, others = _resolve_columns(names, feature_names, False, source)

    def numeric(j: int) -> bool:
        dt = df.dtypes.iloc[j]
        return bool(pdt.is_numeric_dtype(dt) and not pdt.is_bool_dtype(dt) and not pdt.is_complex_dtype(dt))

    bad = [j for j in feat if not numeric(j)]
    if bad:
        j = bad[0]
        if pdt.is_complex_dtype(df.dtypes.iloc[j]):
            raise DataError(
                f"Complex data not supported (dtype {df.dtypes.iloc[j]}); give real numbers",
                path=source,
                column=names[j],
            )
        hint = (
            "pass feature_names=[...] to choose the feature columns (the others are kept as passthrough)"
            if feature_names is None
            else "leave it out of feature_names"
        )
        raise DataError(
            f"column is not numeric (dtype {df.dtypes.iloc[j]}); {hint}", path=source, column=names[j]
        )
    X = df.iloc[:, feat].to_numpy(dtype=np.float64, na_value=np.nan)
    passthrough = {names[j]: df.iloc[:, j].tolist() for j in others}
    return X, [names[j] for j in feat], passthrough
