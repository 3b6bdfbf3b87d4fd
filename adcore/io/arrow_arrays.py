"""Numeric numpy <-> Arrow arrays without pyarrow's pandas shim.

pyarrow converts through code that imports pandas first whenever pandas is installed
(``pa.array(ndarray)``, ``Array.to_numpy()``): 0.2-0.3 s per process, a fifth of an
``adcore score`` over a 2,000,000-row Parquet file, spent on a library the run never uses.
For what the file readers and writers handle almost always (a float64 or int64 array without
nulls) Arrow's values buffer *is* numpy's memory, so ``np.frombuffer`` and
``pa.Array.from_buffers`` convert without a copy or an import; anything else (nulls, other
types) takes pyarrow's general path, with its exact semantics.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Arrow type names whose values buffer is laid out as this numpy dtype.
_PLAIN = {"double": np.dtype(np.float64), "int64": np.dtype(np.int64)}
_ARROW_NAME = {dtype: name for name, dtype in _PLAIN.items()}


def to_numpy(array: Any) -> np.ndarray:
    """An Arrow ``Array`` or ``ChunkedArray`` of numbers as numpy (nulls as NaN).

    Plain chunks come back as read-only views of Arrow's memory; callers that keep or modify
    the values copy them (a ``np.column_stack`` does).
    """
    chunks = getattr(array, "chunks", None)
    if chunks is not None:
        parts = [to_numpy(chunk) for chunk in chunks]
        if not parts:
            return np.empty(0, dtype=_PLAIN.get(str(array.type), np.dtype(np.float64)))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
    dtype = _PLAIN.get(str(array.type))
    if dtype is None or array.null_count:
        return array.to_numpy(zero_copy_only=False)
    values = array.buffers()[1]
    return np.frombuffer(values, dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)


def from_numpy(values: Any, pa: Any, *, nan_is_null: bool = False) -> Any:
    """A 1-D numpy array (or list) as an Arrow array; NaN becomes null with ``nan_is_null``."""
    if isinstance(values, np.ndarray) and values.ndim == 1:
        if not values.dtype.isnative:  # Arrow has no byte-swapped arrays: the machine's order
            values = values.astype(values.dtype.newbyteorder("="))
        name = _ARROW_NAME.get(values.dtype)
        plain = name is not None and not (nan_is_null and name == "double" and np.isnan(values).any())
        if plain:
            contiguous = np.ascontiguousarray(values)
            arrow_type = pa.type_for_alias(name)
            return pa.Array.from_buffers(arrow_type, len(contiguous), [None, pa.py_buffer(contiguous)])
    return pa.array(values, from_pandas=nan_is_null)
