"""NPY and NPZ files: a numeric 2-D (or 1-D) array, or a 1-D structured array of numeric fields.

A .npy file is memory-mapped, so reading it in chunks stays in bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from adcore.errors import DataError
from adcore.io.checks import _resolve_columns
from adcore.io.dataset import _structured_to_float
from adcore.io.source import _Chunk, _row_locator, _Source


def _open_numpy(path: str, fmt: str, chunk: int | None, columns: Sequence[str] | None) -> _Source:
    what = "a .npz archive" if fmt == "npz" else "a .npy file"
    try:
        # mmap keeps chunked reads of a large .npy in bounded memory; a 0-size array cannot be mapped
        try:
            obj = np.load(path, mmap_mode="r" if fmt == "npy" else None, allow_pickle=False)
        except ValueError:
            obj = np.load(path, allow_pickle=False)
    except Exception as e:  # numpy raises ValueError/OSError/EOFError/BadZipFile/... for bad files
        raise DataError(
            f"cannot be read as {what} ({e}); save a numeric array with numpy.save / numpy.savez", path=path
        ) from None
    if isinstance(obj, np.lib.npyio.NpzFile):
        try:
            keys = list(obj.files)
            if not keys:
                raise DataError("the .npz archive holds no arrays", path=path)
            if "X" in keys:
                key = "X"
            elif len(keys) == 1:
                key = keys[0]
            else:
                raise DataError(
                    f"the .npz archive holds several arrays ({', '.join(keys)}) "
                    "and none is named 'X'; "
                    "save the features as X, e.g. numpy.savez(path, X=features)",
                    path=path,
                )
            try:
                arr = obj[key]
            except ValueError as e:
                raise DataError(
                    f"array {key!r} cannot be loaded ({e}); store a numeric array", path=path
                ) from None
        finally:
            obj.close()
    else:
        arr = obj
    if arr.dtype.names:
        if arr.ndim != 1:
            raise DataError(f"expected a 1-D structured array, got shape {arr.shape}", path=path)
        _structured_to_float(arr[:0], path)  # validates the fields
        all_names = list(arr.dtype.names)

        def block(a: np.ndarray, cols: list[int]) -> np.ndarray:
            return (
                np.column_stack([np.asarray(a[all_names[j]], dtype=np.float64) for j in cols])
                if cols
                else np.empty((len(a), 0))
            )
    else:
        if arr.dtype.kind not in "iuf":
            kind = "boolean" if arr.dtype.kind == "b" else "not numeric"
            raise DataError(
                f"the array is {kind} (dtype {arr.dtype}); save ints or floats, e.g. X.astype(float)",
                path=path,
            )
        if arr.ndim == 1:
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2:
            raise DataError(
                f"expected a 2-D array (rows x features) or 1-D (one feature), got shape {arr.shape}",
                path=path,
            )
        all_names = [f"x{j}" for j in range(arr.shape[1])]

        def block(a: np.ndarray, cols: list[int]) -> np.ndarray:
            return np.asarray(a[:, cols], dtype=np.float64)

    n = arr.shape[0]
    if n == 0 or not all_names:
        raise DataError(f"the array has no data (shape {arr.shape})", path=path)
    feat, pas = _resolve_columns(all_names, columns, not arr.dtype.names, path)
    step = chunk or n

    def chunks() -> Iterator[_Chunk]:
        for s in range(0, n, step):
            a = arr[s : s + step]
            pt = {all_names[j]: block(a, [j])[:, 0].tolist() for j in pas}
            yield _Chunk(np.ascontiguousarray(block(a, feat)), pt, _row_locator(s))

    return _Source([all_names[j] for j in feat], chunks())
