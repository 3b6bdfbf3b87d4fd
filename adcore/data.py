"""Reading datasets: files and in-memory arrays become one validated `Dataset`.

Every reader ends in the same checks, so a detector never sees a string, an inf or (unless the
caller chose a `nan_policy`) a NaN, and every bad input is reported as ONE `DataError` that names
the file, the line (text formats, 1-based, as an editor shows it) or row (arrays and Parquet,
0-based), the column, what is wrong and how to fix it.

Only numpy is required: pyarrow (Parquet), orjson (faster JSON) and pandas are imported inside
the functions that need them, so `import adcore.data` stays cheap and works without them.

Writers live in `adcore.data_writers` and are re-exported here.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import operator
import os
import re
import stat
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adcore.data_writers import SUPPORTED_OUTPUT_FORMATS, ScoreWriter, check_output_path, write_scores
from adcore.errors import DataError, MissingDependencyError

__all__ = [
    "NAN_POLICIES",
    "NA_TOKENS",
    "SUPPORTED_INPUT_FORMATS",
    "SUPPORTED_OUTPUT_FORMATS",
    "Dataset",
    "ScoreWriter",
    "check_output_path",
    "format_from_path",
    "iter_dataset_chunks",
    "read_dataset",
    "write_scores",
]

NAN_POLICIES = ("error", "drop", "median")
# CSV cells read as NaN (compared after strip + lower); "-nan"/"+nan" parse as floats anyway.
NA_TOKENS = frozenset({"", "nan", "na", "n/a", "null", "none"})
SUPPORTED_INPUT_FORMATS = ("csv", "tsv", "parquet", "npy", "npz", "json", "jsonl")
_EXTENSIONS = {
    ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet", ".npy": "npy",
    ".npz": "npz", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
}
_FORMAT_ALIASES = {"pq": "parquet", "ndjson": "jsonl"}
_TEXT_CHUNK = 65536  # lines per block when the caller wants the whole file: big enough to amortise numpy
_NAN_HINT = (
    "use --nan drop (nan_policy='drop') to skip rows with missing values, "
    "or --nan median (nan_policy='median') to fill them with the column median"
)
_BOM = b"\xef\xbb\xbf"
_BLANK_LINES = frozenset({b"", b"\n", b"\r\n", b"\r"})
_JSON_NUMBER_TYPES = frozenset({int, float, type(None)})


# --------------------------------------------------------------------------- Dataset


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
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise DataError(f"no data: the array has shape {arr.shape}", path=source)
        path = None if source in ("array", "dataframe") else source
        n_input = arr.shape[0]
        _check_chunk(arr, names, _row_locator(0), path, nan_policy)
        arr, kept = _apply_policy(arr, names, nan_policy, path)
        return cls(np.ascontiguousarray(arr, dtype=np.float64), names, source=source,
                   passthrough=passthrough, kept_rows=kept, n_input_rows=n_input)


# --------------------------------------------------------------------------- public reading API


def format_from_path(path: str | os.PathLike) -> str:
    """The format named by the file extension (case-insensitive), e.g. "csv" for data.CSV."""
    p = os.fspath(path)
    ext = os.path.splitext(p)[1].lower()
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext]
    known = ", ".join(_EXTENSIONS)
    what = f"unknown file extension {ext!r}" if ext else "the file name has no extension"
    raise DataError(f"{what}; supported extensions: {known} (or give the format with --format / fmt=)",
                    path=p)


def _normalize_fmt(fmt: str) -> str:
    """Accept "csv", ".csv", "CSV" and the aliases pq / ndjson; anything else is a DataError."""
    f = str(fmt).strip().lower().lstrip(".")
    f = _FORMAT_ALIASES.get(f, f)
    known = sorted(set(SUPPORTED_INPUT_FORMATS) | set(SUPPORTED_OUTPUT_FORMATS))
    if f not in known:
        raise DataError(f"unknown format {fmt!r}; use one of: {', '.join(known)}")
    return f


def read_dataset(
    path: str | os.PathLike,
    *,
    columns: Sequence[str] | None = None,
    header: bool | None = None,
    nan_policy: str = "error",
    min_rows: int = 1,
    fmt: str | None = None,
) -> Dataset:
    """Read a whole file into one Dataset.

    `columns` picks the features (names, or 0-based positions as strings for files without
    names); the other columns are kept as passthrough. `header` (CSV/TSV only): None = detect,
    the first row is a header when any cell is not a number. An input without data rows is always
    an error; `min_rows` is checked after nan_policy="drop".
    """
    _check_policy(nan_policy)
    p, f = _prepare_input(path, fmt)
    src = _open_source(p, f, None, columns, header)
    parts: list[np.ndarray] = []
    passthrough: dict[str, list] = {}
    with contextlib.closing(src.chunks):
        for chunk in src.chunks:
            _check_chunk(chunk.X, src.names, chunk.where, p, nan_policy)
            parts.append(chunk.X)
            for k, v in chunk.passthrough.items():
                passthrough.setdefault(k, []).extend(v)
    X = parts[0] if len(parts) == 1 else np.concatenate(parts)
    n_input = X.shape[0]
    X, kept = _apply_policy(X, src.names, nan_policy, p)
    if X.shape[0] < min_rows:
        dropped = n_input - X.shape[0]
        why = f" after dropping {dropped} of {n_input} rows with missing values" if dropped else ""
        raise DataError(f"need at least {_plural(min_rows, 'row')}, got {X.shape[0]}{why}", path=p)
    return Dataset(np.ascontiguousarray(X), list(src.names), source=p, passthrough=passthrough,
                   kept_rows=kept, n_input_rows=n_input)


def iter_dataset_chunks(
    path: str | os.PathLike,
    *,
    chunk_size: int,
    columns: Sequence[str] | None = None,
    header: bool | None = None,
    nan_policy: str = "error",
    fmt: str | None = None,
) -> Iterator[Dataset]:
    """Read a file as Datasets of at most `chunk_size` rows, in bounded memory.

    The arguments, the file and its header are checked at call time, before the first chunk.
    Every chunk has the same feature_names; `first_row` gives its place in the input and
    `kept_rows` is relative to the chunk (so `chunk.expand` works per chunk). A chunk whose rows
    were all dropped is still yielded (0 samples) so its passthrough rows reach the output.
    nan_policy="median" is refused: a per-chunk median would make results depend on chunk_size.
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise DataError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    _check_policy(nan_policy)
    if nan_policy == "median":
        raise DataError(
            "nan_policy='median' needs whole columns and cannot be used when reading in chunks; "
            "use --nan drop, or read the file without --chunk-size"
        )
    p, f = _prepare_input(path, fmt)
    src = _open_source(p, f, int(chunk_size), columns, header)
    return _iter_chunks(src, p, nan_policy)


def _iter_chunks(src: _Source, path: str, nan_policy: str) -> Iterator[Dataset]:
    first_row = 0
    with contextlib.closing(src.chunks):
        for chunk in src.chunks:
            _check_chunk(chunk.X, src.names, chunk.where, path, nan_policy)
            n = chunk.X.shape[0]
            X, kept = _apply_policy(chunk.X, src.names, nan_policy, path)
            yield Dataset(np.ascontiguousarray(X), list(src.names), source=path,
                          passthrough=chunk.passthrough, kept_rows=kept, n_input_rows=n, first_row=first_row)
            first_row += n


# --------------------------------------------------------------------------- shared checks


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _check_policy(nan_policy: str) -> None:
    if nan_policy not in NAN_POLICIES:
        raise DataError(f"unknown nan_policy {nan_policy!r}; use one of: {', '.join(NAN_POLICIES)}")


def _prepare_input(path: str | os.PathLike, fmt: str | None) -> tuple[str, str]:
    """Check the file exists, is a non-empty regular file and has a readable format."""
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise DataError("file not found; check the path", path=p) from None
    except OSError as e:
        raise DataError(f"cannot read the file ({e.strerror})", path=p) from None
    if stat.S_ISDIR(st.st_mode):
        raise DataError("is a directory, not a file; give the path of a data file", path=p)
    f = _normalize_fmt(fmt) if fmt is not None else format_from_path(p)
    if f not in SUPPORTED_INPUT_FORMATS:
        raise DataError(f"cannot read {f!r} files; readable formats: {', '.join(SUPPORTED_INPUT_FORMATS)}",
                        path=p)
    if st.st_size == 0:
        raise DataError("the file is empty (0 bytes)", path=p)
    return p, f


Locator = Callable[[int], dict]


def _row_locator(first_row: int) -> Locator:
    return lambda i: {"row": first_row + int(i)}


def _line_locator(lines: np.ndarray) -> Locator:
    return lambda i: {"line": int(lines[i])}


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
            path=path, column=names[j], **where(i),
        )
    if policy == "error":
        i, j = _first_true(np.isnan(X))
        raise DataError(f"missing value (empty, NaN, NA or null); {_NAN_HINT}",
                        path=path, column=names[j], **where(i))


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
                path=path, column=names[j],
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
        elif positional and c.isdigit() and int(c) < len(names):
            j = int(c)
        else:
            pos = " (or their 0-based positions)" if positional else ""
            raise DataError(f"unknown column {c!r}; available columns{pos}: {_describe_names(names)}",
                            path=path)
        if j in feat:
            raise DataError(f"column {names[j]!r} is selected twice in --columns / columns=", path=path)
        feat.append(j)
    return feat, [j for j in range(len(names)) if j not in feat]


def _feature_hint(columns: Sequence[str] | None, name: str) -> str:
    if columns is None:
        return (f"if {name!r} is not a feature, choose the feature columns with --columns (columns=[...]); "
                "the other columns are then passed through to the output")
    return f"fix the value, or leave {name!r} out of --columns"


def _names_for(n: int, feature_names: Sequence[str] | None, path: str | None) -> list[str]:
    if feature_names is None:
        return [f"x{j}" for j in range(n)]
    names = [str(c) for c in feature_names]
    if len(names) != n:
        raise DataError(f"{len(names)} feature names given for {n} columns", path=path)
    _check_unique(names, path, "feature_names")
    return names


# --------------------------------------------------------------------------- arrays / DataFrames


def _numeric_array(X: Any, source: str | None) -> np.ndarray:
    """numpy array or nested lists -> float64 array; strings, bools and objects are refused."""
    if isinstance(X, np.ndarray):
        arr = X
    else:
        try:
            arr = np.asarray(X)
        except ValueError as e:  # ragged nested lists
            raise DataError(f"rows have different lengths, cannot make a 2-D array ({e})",
                            path=source) from None
    kind = arr.dtype.kind
    if kind in "iuf":
        return arr.astype(np.float64, copy=False)
    if arr.dtype.names:
        return _structured_to_float(arr, source)[0]
    if kind == "b":
        raise DataError("booleans are not numbers here; convert them first, e.g. X.astype(float)",
                        path=source)
    if kind in "OUS" and not isinstance(X, np.ndarray):
        obj = np.asarray(X, dtype=object)
        bad = np.frompyfunc(lambda v: type(v) not in _JSON_NUMBER_TYPES, 1, 1)(obj).astype(bool)
        if obj.ndim in (1, 2) and not bad.any():
            return np.array(obj.tolist(), dtype=np.float64)  # None -> NaN
        if obj.ndim in (1, 2):
            bad2 = bad.reshape(len(obj), -1)
            i, j = _first_true(bad2)
            v = obj.reshape(len(obj), -1)[i, j]
            raise DataError(f"{v!r} is not a number", path=source, row=i, column=j)
    raise DataError(
        f"the array is not numeric (dtype {arr.dtype}); give ints or floats, e.g. X.astype(float)",
        path=source,
    )


def _structured_to_float(arr: np.ndarray, path: str | None) -> tuple[np.ndarray, list[str]]:
    """A structured array (named numeric fields, e.g. from np.save of a record array) -> columns."""
    names = list(arr.dtype.names or ())
    for n in names:
        ft = arr.dtype.fields[n][0]
        if ft.kind not in "iuf" or ft.shape:
            raise DataError(f"field is not a numeric scalar (dtype {ft}); save numeric fields only",
                            path=path, column=n)
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
        hint = ("pass feature_names=[...] to choose the feature columns (the others are kept as passthrough)"
                if feature_names is None else "leave it out of feature_names")
        raise DataError(f"column is not numeric (dtype {df.dtypes.iloc[j]}); {hint}",
                        path=source, column=names[j])
    X = df.iloc[:, feat].to_numpy(dtype=np.float64, na_value=np.nan)
    passthrough = {names[j]: df.iloc[:, j].tolist() for j in others}
    return X, [names[j] for j in feat], passthrough


# --------------------------------------------------------------------------- readers: common frame


@dataclass
class _Chunk:
    X: np.ndarray
    passthrough: dict[str, list]
    where: Locator


@dataclass
class _Source:
    names: list[str]
    chunks: Iterator[_Chunk]


def _open_source(path: str, fmt: str, chunk: int | None, columns: Sequence[str] | None,
                 header: bool | None) -> _Source:
    """Set up a reader (header, column selection: errors surface now) and return its chunk stream.

    `chunk` None means the caller wants everything: text is still parsed in blocks, arrays whole.
    """
    if header not in (None, True, False):
        raise DataError(f"header must be True, False or None (detect), got {header!r}", path=path)
    if fmt in ("csv", "tsv"):
        return _CsvReader(path, "," if fmt == "csv" else "\t", chunk or _TEXT_CHUNK, columns, header).source()
    if fmt == "jsonl":
        return _open_jsonl(path, chunk or _TEXT_CHUNK, columns)
    if fmt == "json":
        return _open_json(path, chunk, columns)
    if fmt in ("npy", "npz"):
        return _open_numpy(path, fmt, chunk, columns)
    return _open_parquet(path, chunk, columns)


def _open_binary(path: str) -> Any:
    try:
        return open(path, "rb")  # owned and closed by the chunk generator
    except OSError as e:
        raise DataError(f"cannot open the file ({e.strerror})", path=path) from None


# --------------------------------------------------------------------------- CSV / TSV


class _CsvReader:
    """CSV/TSV in blocks of lines, parsed by numpy when the block is plain and by `csv` when not.

    Fast path: numpy.loadtxt on the raw lines (quotes allowed within a line); on failure the same
    block with NA tokens rewritten to "nan" (only when it has no quotes, where that rewrite is
    safe). Anything else (quoted newlines, bad cells, ragged rows, bad UTF-8) goes to the slow
    path, which splits with the stdlib csv module and converts each block with one numpy call, and
    which is the one that pinpoints errors. Both paths give the same values; the fast one only
    exists because building a Python string per cell costs several seconds per million rows.
    """

    def __init__(self, path: str, delimiter: str, chunk_lines: int, columns: Sequence[str] | None,
                 header: bool | None) -> None:
        self.path = path
        self.delim = delimiter
        self.bdelim = delimiter.encode()
        self.chunk_lines = chunk_lines
        self.columns = columns
        self.lineno = 0  # lines consumed so far
        self.f = _open_binary(path)
        try:
            self._read_header(header)
        except BaseException:
            self.f.close()
            raise
        d = re.escape(self.bdelim)
        end = rb"(?=" + d + rb"|\r|\n|\Z)"
        self._na_token = re.compile(rb"(^|" + d + rb")[ ]*(?:na|n/a|null|none)[ ]*" + end, re.M | re.I)
        self._empty_lead = re.compile(rb"(^|" + d + rb")[ ]*(?=" + d + rb")", re.M)
        self._empty_trail = re.compile(d + rb"[ ]*(?=\r|\n|\Z)")
        self._na_seen = False  # a block needed NA rewriting: later blocks probably do too

    def _na_fixed(self, lines: list[bytes], blob: bytes) -> list[bytes] | None:
        """`lines` with empty cells and NA tokens rewritten as "nan" so loadtxt can parse them;
        None when no line needs it.

        Only called on quote-free blocks, where delimiters and newlines are exactly what they look
        like. Candidate lines are found with bytes.find (C speed) and only those are rewritten.
        """
        d = self.bdelim
        b = np.frombuffer(blob, dtype=np.uint8)
        dm = b == d[0]
        nl = (b == 10) | (b == 13)
        # empty cell: a delimiter followed by a delimiter or a line end, or a line starting with one
        hits = [np.flatnonzero(dm[:-1] & (dm[1:] | nl[1:])), np.flatnonzero(nl[:-1] & dm[1:]) + 1]
        if blob.startswith(d) or blob.endswith(d):
            hits.append(np.array([0, len(blob) - 1]))
        if b"n" in blob or b"N" in blob:
            low = blob.lower()
            tokens = [i for i in _find_all(low, b"na") if low[i + 2:i + 3] != b"n"]  # not "nan"
            tokens += list(_find_all(low, b"null")) + list(_find_all(low, b"none"))
            hits.append(np.asarray(tokens, dtype=np.int64))
        hits = np.concatenate(hits)
        if not hits.size:
            return None
        ends = np.cumsum(np.fromiter(map(len, lines), dtype=np.int64, count=len(lines)))
        out = list(lines)
        for k in np.unique(np.searchsorted(ends, hits, side="right")).tolist():
            if k < len(out):
                ln = self._na_token.sub(rb"\g<1>nan", out[k])
                out[k] = self._empty_trail.sub(d + b"nan", self._empty_lead.sub(rb"\g<1>nan", ln))
        return out

    # -- line source

    def _take(self, n: int) -> list[bytes]:
        lines = list(itertools.islice(self.f, n))
        if self.lineno == 0 and lines and lines[0].startswith(_BOM):
            lines[0] = lines[0][len(_BOM):]
        self.lineno += len(lines)
        return lines

    def _decode(self, raw: bytes, line: int) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"is not UTF-8 text (bad byte at position {e.start + 1} of the line); "
                            "save the file as UTF-8", path=self.path, line=line) from None

    def _split(self, lines: list[bytes], start: int) -> tuple[list[list[str]], list[int]]:
        """Split `lines` (the first at line `start`) with the csv module.

        A quoted field may run past the block: the reader then pulls the rest of that record from
        the file, which csv allows because it never reads beyond the record it is on.
        """
        consumed = 0

        def feed() -> Iterator[str]:
            nonlocal consumed
            for raw in lines:
                consumed += 1
                yield self._decode(raw, start + consumed - 1)
            for raw in self.f:
                self.lineno += 1
                consumed += 1
                yield self._decode(raw, start + consumed - 1)

        reader = csv.reader(feed(), delimiter=self.delim)
        rows: list[list[str]] = []
        rec_lines: list[int] = []
        while consumed < len(lines):
            begin = start + consumed
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                raise DataError(f"malformed CSV ({e}); check the quoting", path=self.path,
                                line=start + consumed - 1) from None
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            rows.append(row)
            rec_lines.append(begin)
        return rows, rec_lines

    # -- header

    def _read_header(self, header: bool | None) -> None:
        first: list[str] | None = None
        while first is None:
            start = self.lineno + 1
            lines = self._take(1)
            if not lines:
                raise DataError("the file has no rows (only blank lines)", path=self.path)
            rows, rec = self._split(lines, start)
            if rows:
                first, self.header_line = rows[0], rec[0]
        self.ncols = len(first)
        if header is None:
            header = not all(_is_number_cell(c) for c in first)
        self.has_header = header
        if header:
            names = [c.strip() or f"x{j}" for j, c in enumerate(first)]
            _check_unique(names, self.path, f"the header (line {self.header_line})")
        else:
            names = [f"x{j}" for j in range(self.ncols)]
            self.f.seek(0)  # the first record is data: read it again as part of the first block
            self.lineno = 0
        self.all_names = names
        self.feat, self.pas = _resolve_columns(names, self.columns, not header, self.path)
        self.names = [names[j] for j in self.feat]

    def source(self) -> _Source:
        return _Source(self.names, self._chunks())

    def _chunks(self) -> Iterator[_Chunk]:
        emitted = False
        try:
            while True:
                start = self.lineno + 1
                lines = self._take(self.chunk_lines)
                if not lines:
                    break
                got = self._fast(lines, start)
                if got is None:
                    got = self._slow(*self._split(lines, start))
                X, passthrough, rec_lines = got
                if X.shape[0]:
                    emitted = True
                    yield _Chunk(X, passthrough, _line_locator(rec_lines))
        finally:
            self.f.close()
        if not emitted:
            what = f"has a header row (line {self.header_line}) but no data rows" if self.has_header \
                else "has no data rows"
            raise DataError(f"the file {what}; add data rows below the header", path=self.path)

    # -- fast path

    def _loadtxt(self, lines: list[bytes], usecols: list[int] | None, dtype: Any,
                 encoding: str) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": blank block
            return np.loadtxt(lines, dtype=dtype, delimiter=self.delim, comments=None, quotechar='"',
                              ndmin=2, usecols=usecols, encoding=encoding)

    def _fast(self, lines: list[bytes], start: int) -> tuple[np.ndarray, dict[str, list], np.ndarray] | None:
        blob = b"".join(lines)
        quoted = b'"' in blob
        # An odd quote count on a line means a quoted newline: only the csv module gets that right.
        # Passthrough text with quotes also goes the slow way, to keep csv's exact quoting rules.
        if quoted and (self.pas or any(ln.count(b'"') % 2 for ln in lines if b'"' in ln)):
            return None
        usecols = self.feat if self.pas else None
        X = None
        if not (self._na_seen and not quoted):
            try:
                X = self._loadtxt(lines, usecols, np.float64, "latin1")
            except ValueError:
                if quoted:
                    return None
        if X is None:
            fixed = self._na_fixed(lines, blob)
            if fixed is None:
                if not self._na_seen:
                    return None  # plain loadtxt already failed on these lines
                fixed = lines
            else:
                self._na_seen = True
            try:
                X = self._loadtxt(fixed, usecols, np.float64, "latin1")
            except ValueError:
                return None
        n = X.shape[0]
        if n == len(lines):
            rec_lines = start + np.arange(n)
        else:  # loadtxt skipped empty lines: map rows back to lines
            nonblank = [k for k, ln in enumerate(lines) if ln not in _BLANK_LINES]
            if len(nonblank) != n:
                return None
            rec_lines = start + np.asarray(nonblank, dtype=np.int64)
        passthrough: dict[str, list] = {}
        if self.pas:
            # usecols hides ragged rows from loadtxt: count delimiters (exact, as there are no quotes)
            bad = set(map(bytes.count, lines, itertools.repeat(self.bdelim))) - {self.ncols - 1}
            if bad and (bad != {0} or any(ln.count(self.bdelim) == 0 and ln not in _BLANK_LINES
                                          for ln in lines)):
                return None
            try:
                P = self._loadtxt(lines, self.pas, str, "utf-8")
            except ValueError:  # includes UnicodeDecodeError
                return None
            if P.shape[0] != n:
                return None
            passthrough = {self.all_names[j]: P[:, t].tolist() for t, j in enumerate(self.pas)}
        elif X.shape[1] != self.ncols:
            return None
        elif self.feat != list(range(self.ncols)):
            X = X[:, self.feat]
        return np.ascontiguousarray(X), passthrough, rec_lines

    # -- slow path (also the error reporter)

    def _slow(self, rows: list[list[str]], rec_lines: list[int]
              ) -> tuple[np.ndarray, dict[str, list], np.ndarray]:
        lines = np.asarray(rec_lines, dtype=np.int64)
        for k, row in enumerate(rows):
            if len(row) != self.ncols:
                ref = f"line {self.header_line}"
                if self.has_header:
                    ref = f"the header ({ref})"
                raise DataError(
                    f"this row has {_plural(len(row), 'field')} but {ref} has {self.ncols}; look for a "
                    f"missing or extra {'comma' if self.delim == ',' else 'tab'}, "
                    "or quote text that contains one",
                    path=self.path, line=rec_lines[k],
                )
        nf = len(self.feat)
        if not rows:
            return np.empty((0, nf)), {self.all_names[j]: [] for j in self.pas}, lines
        if self.pas:
            get = operator.itemgetter(*self.feat)
            cells = [get(r) for r in rows] if nf > 1 else [(get(r),) for r in rows]
        else:
            cells = rows
        X = self._to_float(cells, lines)
        passthrough = {self.all_names[j]: [r[j] for r in rows] for j in self.pas}
        return X, passthrough, lines

    def _to_float(self, cells: list, lines: np.ndarray) -> np.ndarray:
        S = np.char.strip(np.array(cells, dtype=str))
        na = np.isin(np.char.lower(S), list(NA_TOKENS))
        try:
            return np.where(na, "nan", S).astype(np.float64).reshape(len(cells), len(self.feat))
        except ValueError:
            pass
        # Find the first bad cell in reading order; if Python's float accepts everything, use it.
        out = np.empty((len(cells), len(self.feat)))
        for i, row in enumerate(cells):
            for t, c in enumerate(row):
                s = c.strip()
                if s.lower() in NA_TOKENS:
                    out[i, t] = np.nan
                    continue
                try:
                    out[i, t] = float(s)
                except ValueError:
                    name = self.all_names[self.feat[t]]
                    raise DataError(f"{c!r} is not a number; {_feature_hint(self.columns, name)}",
                                    path=self.path, line=int(lines[i]), column=name) from None
        return out


def _find_all(hay: bytes, needle: bytes) -> Iterator[int]:
    i = hay.find(needle)
    while i >= 0:
        yield i
        i = hay.find(needle, i + 1)


def _is_number_cell(cell: str) -> bool:
    s = cell.strip()
    if s.lower() in NA_TOKENS:
        return True
    try:
        float(s)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- JSON / JSONL


def _orjson() -> Any:
    try:
        import orjson
    except ImportError:
        return None
    return orjson


def _json_loads(raw: bytes, path: str, line: int | None) -> Any:
    """orjson when installed; on any failure the stdlib decides (it also accepts NaN literals),
    so the accepted input and the error messages do not depend on orjson being installed."""
    oj = _orjson()
    if oj is not None:
        try:
            return oj.loads(raw)
        except ValueError:
            pass
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"is not UTF-8 text (bad byte at offset {e.start})", path=path, line=line) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        at = line if line is not None else e.lineno
        raise DataError(f"invalid JSON: {e.msg} (at character {e.colno})", path=path, line=at) from None
    except RecursionError:
        raise DataError("invalid JSON: nested too deeply", path=path, line=line) from None


def _fits_float(v: int) -> bool:
    try:
        float(v)
    except OverflowError:
        return False
    return True


def _json_kind(v: Any) -> str:
    if isinstance(v, bool):
        return f"{'true' if v else 'false'} is a boolean, not a number (write 0 or 1)"
    if isinstance(v, str):
        return f"{v!r} is a string, not a number"
    if isinstance(v, (list, dict)):
        return f"a nested {'array' if isinstance(v, list) else 'object'} is not a number"
    if isinstance(v, int):
        return f"{v} is too large for a float64"
    return f"{v!r} is not a number"


class _RecordLayout:
    """How records (JSON objects or arrays) map to features and passthrough, fixed by the first one."""

    def __init__(self, first: Any, columns: Sequence[str] | None, path: str, where: dict,
                 names: list[str] | None = None) -> None:
        self.path, self.columns = path, columns
        if isinstance(first, dict):
            self.kind = "object"
            keys = [str(k) for k in first]
            if not keys:
                raise DataError("the first record is an empty object; it defines the columns",
                                path=path, **where)
            feat, pas = _resolve_columns(keys, columns, False, path)
            self.feat_keys: list[Any] = [keys[j] for j in feat]
            self.pass_keys: list[Any] = [keys[j] for j in pas]
            self.names = list(self.feat_keys)
            self.pass_names = list(self.pass_keys)
        elif isinstance(first, list):
            self.kind = "array"
            self.width = len(names) if names is not None else len(first)
            all_names = names if names is not None else [f"x{j}" for j in range(self.width)]
            if not all_names:
                raise DataError("the first record is an empty array", path=path, **where)
            feat, pas = _resolve_columns(all_names, columns, names is None, path)
            self.feat_keys, self.pass_keys = feat, pas
            self.names = [all_names[j] for j in feat]
            self.pass_names = [all_names[j] for j in pas]
        else:
            raise DataError(f"expected a JSON object or array per record, got {type(first).__name__}",
                            path=path, **where)

    def convert(self, records: list, where: Locator) -> tuple[np.ndarray, dict[str, list]]:
        path = self.path
        want = dict if self.kind == "object" else list
        for i, r in enumerate(records):
            if type(r) is not want:
                raise DataError(f"expected a JSON {self.kind} like the first record, got {type(r).__name__}",
                                path=path, **where(i))
        nf = len(self.feat_keys)
        get = operator.itemgetter(*self.feat_keys)
        if self.kind == "array":
            for i, r in enumerate(records):
                if len(r) != self.width:
                    raise DataError(f"this record has {len(r)} values, expected {self.width}",
                                    path=path, **where(i))
        try:
            rows = [get(r) for r in records] if nf > 1 else [(get(r),) for r in records]
        except KeyError:
            for i, r in enumerate(records):
                for k in self.feat_keys:
                    if k not in r:
                        raise DataError("missing key; every record needs every feature key", path=path,
                                        column=k, **where(i)) from None
            raise
        types = set(map(type, itertools.chain.from_iterable(rows)))
        X = None
        if types <= _JSON_NUMBER_TYPES:
            try:
                X = np.array(rows, dtype=np.float64).reshape(len(rows), nf)
            except (OverflowError, ValueError, TypeError):
                X = None
        if X is None:
            for i, row in enumerate(rows):
                for t, v in enumerate(row):
                    if type(v) not in _JSON_NUMBER_TYPES or (type(v) is int and not _fits_float(v)):
                        name = self.names[t]
                        raise DataError(f"{_json_kind(v)}; {_feature_hint(self.columns, name)}",
                                        path=path, column=name, **where(i))
            raise DataError("values cannot be converted to float64", path=path)
        if self.kind == "object":
            passthrough = {k: [r.get(k) for r in records] for k in self.pass_keys}
        else:
            pairs = zip(self.pass_names, self.pass_keys, strict=True)
            passthrough = {n: [r[j] for r in records] for n, j in pairs}
        return X, passthrough


def _open_jsonl(path: str, chunk_lines: int, columns: Sequence[str] | None) -> _Source:
    f = _open_binary(path)
    try:
        lineno = 0
        first = None
        while first is None:  # the first record fixes the layout: read it now so errors show early
            raw = f.readline()
            if not raw:
                raise DataError("the file has no records (only blank lines)", path=path)
            lineno += 1
            if raw.strip():
                first = _json_loads(raw, path, lineno)
                first_line = lineno
        layout = _RecordLayout(first, columns, path, {"line": first_line})
        f.seek(0)
    except BaseException:
        f.close()
        raise

    def chunks() -> Iterator[_Chunk]:
        n = 0
        try:
            while True:
                lines = list(itertools.islice(f, chunk_lines))
                if not lines:
                    break
                records, rec_lines = [], []
                for k, raw in enumerate(lines):
                    if raw.strip():
                        records.append(_json_loads(raw, path, n + k + 1))
                        rec_lines.append(n + k + 1)
                n += len(lines)
                if records:
                    X, pt = layout.convert(records, _line_locator(np.asarray(rec_lines)))
                    yield _Chunk(X, pt, _line_locator(np.asarray(rec_lines)))
        finally:
            f.close()

    return _Source(layout.names, chunks())


def _open_json(path: str, chunk: int | None, columns: Sequence[str] | None) -> _Source:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as e:
        raise DataError(f"cannot read the file ({e.strerror})", path=path) from None
    data = _json_loads(raw, path, None)
    names = None
    shape_help = 'expected a list of objects, a list of arrays, or {"columns": [...], "data": [[...], ...]}'
    if isinstance(data, dict):
        if "columns" not in data or "data" not in data:
            raise DataError(f"{shape_help}; got an object with keys {_describe_names(list(data))}", path=path)
        names = [str(c) for c in data["columns"]] if isinstance(data["columns"], list) else None
        records = data["data"]
        if names is None or not isinstance(records, list):
            raise DataError(f'{shape_help}; "columns" and "data" must be lists', path=path)
        _check_unique(names, path, '"columns"')
    elif isinstance(data, list):
        records = data
    else:
        raise DataError(f"{shape_help}; got a {type(data).__name__}", path=path)
    if not records:
        raise DataError("the file has no data rows (the list is empty)", path=path)
    if names is not None and not isinstance(records[0], list):
        raise DataError('every row in "data" must be an array', path=path, row=0)
    layout = _RecordLayout(records[0], columns, path, {"row": 0}, names=names)
    step = chunk or len(records)

    def chunks() -> Iterator[_Chunk]:
        for s in range(0, len(records), step):
            X, pt = layout.convert(records[s:s + step], _row_locator(s))
            yield _Chunk(X, pt, _row_locator(s))

    return _Source(layout.names, chunks())


# --------------------------------------------------------------------------- NPY / NPZ


def _open_numpy(path: str, fmt: str, chunk: int | None, columns: Sequence[str] | None) -> _Source:
    what = "a .npz archive" if fmt == "npz" else "a .npy file"
    try:
        # mmap keeps chunked reads of a large .npy in bounded memory; a 0-size array cannot be mapped
        try:
            obj = np.load(path, mmap_mode="r" if fmt == "npy" else None, allow_pickle=False)
        except ValueError:
            obj = np.load(path, allow_pickle=False)
    except Exception as e:  # numpy raises ValueError/OSError/EOFError/BadZipFile/... for bad files
        raise DataError(f"cannot be read as {what} ({e}); save a numeric array with numpy.save / numpy.savez",
                        path=path) from None
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
                raise DataError(f"the .npz archive holds several arrays ({', '.join(keys)}) "
                                "and none is named 'X'; "
                                "save the features as X, e.g. numpy.savez(path, X=features)", path=path)
            try:
                arr = obj[key]
            except ValueError as e:
                raise DataError(f"array {key!r} cannot be loaded ({e}); store a numeric array",
                                path=path) from None
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
            return np.column_stack([np.asarray(a[all_names[j]], dtype=np.float64) for j in cols]) \
                if cols else np.empty((len(a), 0))
    else:
        if arr.dtype.kind not in "iuf":
            kind = "boolean" if arr.dtype.kind == "b" else "not numeric"
            raise DataError(f"the array is {kind} (dtype {arr.dtype}); save ints or floats, "
                            "e.g. X.astype(float)",
                            path=path)
        if arr.ndim == 1:
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2:
            raise DataError("expected a 2-D array (rows x features) or 1-D (one feature), "
                            f"got shape {arr.shape}", path=path)
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
            a = arr[s:s + step]
            pt = {all_names[j]: block(a, [j])[:, 0].tolist() for j in pas}
            yield _Chunk(np.ascontiguousarray(block(a, feat)), pt, _row_locator(s))

    return _Source([all_names[j] for j in feat], chunks())


# --------------------------------------------------------------------------- Parquet


def _pyarrow(action: str) -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:
        raise MissingDependencyError(f"{action} Parquet needs pyarrow: pip install 'adcore[parquet]'") from e
    return pa, pq


def _open_parquet(path: str, chunk: int | None, columns: Sequence[str] | None) -> _Source:
    pa, pq = _pyarrow("reading")
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"cannot be read as a Parquet file ({e})", path=path) from None
    schema = pf.schema_arrow
    names = list(schema.names)
    _check_unique(names, path, "the Parquet schema")

    def numeric(t: Any) -> bool:
        return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
                    or pa.types.is_null(t))

    feat, pas = _resolve_columns(names, columns, False, path)
    bad = [names[j] for j in feat if not numeric(schema.field(names[j]).type)]
    if bad:
        desc = ", ".join(f"{b!r} ({schema.field(b).type})" for b in bad)
        hint = ("choose the feature columns with --columns (columns=[...]); the other columns are then "
                "passed through to the output") if columns is None else "leave them out of --columns"
        raise DataError(f"non-numeric column(s) {desc} cannot be features; {hint}", path=path, column=bad[0])
    n = pf.metadata.num_rows
    if n == 0:
        raise DataError("the file has no data rows", path=path)
    wanted = [names[j] for j in feat + pas]

    def convert(tbl: Any, s: int) -> _Chunk:
        X = np.empty((tbl.num_rows, len(feat)), dtype=np.float64)
        for t, j in enumerate(feat):
            X[:, t] = tbl.column(names[j]).cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        pt = {names[j]: tbl.column(names[j]).to_pylist() for j in pas}
        return _Chunk(X, pt, _row_locator(s))

    def chunks() -> Iterator[_Chunk]:
        s = 0
        try:
            tables = ([pf.read(columns=wanted)] if chunk is None
                      else pf.iter_batches(batch_size=chunk, columns=wanted))
            for tbl in tables:
                if tbl.num_rows:
                    yield convert(tbl, s)
                s += tbl.num_rows
        except pa.ArrowException as e:
            raise DataError(f"cannot read the Parquet data near row {s} ({e})", path=path) from None

    return _Source([names[j] for j in feat], chunks())
