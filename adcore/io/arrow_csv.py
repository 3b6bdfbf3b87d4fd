"""pyarrow's CSV parser and writer for the common case, the stdlib path for everything else.

Parsing and formatting were most of ``adcore score``'s time on a large CSV. Where pyarrow is
installed, a local CSV's data rows are parsed by ``pyarrow.csv.read_csv`` (C++, multi-threaded)
one block of :data:`BLOCK_BYTES` at a time (so memory stays bounded by the chunk size, as before)
and score rows are
formatted by ``pyarrow.csv.write_csv``. The stdlib path (:mod:`adcore.io.csv_reader`,
:mod:`adcore.io.output_formats`) stays the reference, and the fallback:

* The header, its detection and the column selection are always the stdlib reader's, so
  names and their errors are unchanged.
* Arrow reads only what it converts exactly as the stdlib path would: every feature cell as
  a float64 or one of the NA tokens, passthrough cells as UTF-8 text. At the first block it
  cannot read (a bad cell, a ragged row, an NA token in another spelling, bad UTF-8, a NaN
  spelled in a way only Arrow takes), the stdlib reader takes over *from the first record
  not yet delivered*, so the values are the same and any error is the stdlib's, naming the
  line and the column. Lines of rows that Arrow delivered are found only if an error needs
  one (the stdlib reader counts them then).
* Score rows: the header is written by the csv module; rows by Arrow when every passthrough
  cell is plain text (no quote, delimiter or line break) and the extra columns are numbers,
  else by the csv module. The bytes are the same: floats are written as ``repr`` writes
  them (see :func:`_repr_strings`), NaN as an empty cell.

``ADCORE_CSV_ENGINE=stdlib`` turns Arrow off (to compare, or to rule it out); ``auto`` (the
default) uses it when pyarrow imports.
"""

from __future__ import annotations

import io
import math
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from adcore.io.arrow_arrays import from_numpy, to_numpy
from adcore.io.source import _Chunk, _Source

if TYPE_CHECKING:
    from adcore.io.csv_reader import _CsvReader

ENGINE_ENV = "ADCORE_CSV_ENGINE"
#: Smaller files and batches stay on the stdlib path unless pyarrow is loaded already: it
#: reads them in milliseconds, and importing pyarrow costs about 50 ms of a small run.
MIN_BYTES = 1 << 20
MIN_ROWS = 5_000
#: Bytes per block Arrow parses at a time (with a chunk's rows, the memory the read needs).
BLOCK_BYTES = 2 << 20
_BOM = b"\xef\xbb\xbf"


def engine() -> str:
    """``auto`` (Arrow when pyarrow imports) or ``stdlib``, from ``ADCORE_CSV_ENGINE``."""
    value = os.environ.get(ENGINE_ENV, "auto").strip().lower()
    return "stdlib" if value == "stdlib" else "auto"


def _pyarrow() -> tuple[Any, Any, Any] | None:
    """``(pyarrow, pyarrow.csv, pyarrow.compute)``, or None when off or not installed."""
    if engine() == "stdlib":
        return None
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pcsv
    except ImportError:
        return None
    return pa, pcsv, pc


def _null_values() -> list[str]:
    """The NA tokens (:data:`adcore.io.csv_reader.NA_TOKENS`) in the spellings Arrow matches.

    Arrow compares exactly; another spelling ("nUll", " NA") fails conversion and the stdlib
    path, which strips and lower-cases, reads it.
    """
    from adcore.io.csv_reader import NA_TOKENS

    spellings = {v for t in NA_TOKENS for v in (t, t.upper(), t.capitalize(), t.title())}
    return sorted(spellings | {"NaN", "-nan", "+nan", "-NaN", "+NaN"})


# -- reading


def arrow_source(reader: _CsvReader) -> _Source | None:
    """The data rows of ``reader``'s file (its header already read) through Arrow, or None when
    Arrow cannot serve it (off, not installed, or not a local file the reader opened)."""
    f = reader.f
    if not isinstance(f, io.BufferedReader) or getattr(f, "name", None) != reader.path:
        return None
    if "pyarrow.csv" not in sys.modules and os.fstat(f.fileno()).st_size < MIN_BYTES:
        return None
    mods = _pyarrow()
    if mods is None:
        return None
    return _Source(reader.names, _chunks(reader, f.tell(), *mods))


def _stdlib_reader(reader: _CsvReader) -> _CsvReader:
    """A fresh stdlib reader of the same file with the same settings (header already decided)."""
    from adcore.io.csv_reader import _CsvReader

    return _CsvReader(reader.path, reader.delim, reader.chunk_lines, reader.columns, reader.has_header)


def _line_finder(reader: _CsvReader) -> Callable[[int], dict]:
    """Record number (0-based, over the file) -> ``{"line": n}``, counted by the stdlib reader.

    Only called to name a line in an error, so it may re-read the file.
    """

    def where(record: int) -> dict:
        seen = 0
        for chunk in _stdlib_reader(reader)._chunks():
            n = chunk.X.shape[0]
            if record < seen + n:
                chunk_where = chunk.where
                return chunk_where(record - seen)
            seen += n
        return {"row": record}

    return where


def _chunks(reader: _CsvReader, offset: int, pa: Any, pcsv: Any, pc: Any) -> Iterator[_Chunk]:
    emitted = 0
    finder = _line_finder(reader)
    f = reader.f
    names = [f"c{j}" for j in range(reader.ncols)]
    feat = [names[j] for j in reader.feat]
    pas = [names[j] for j in reader.pas]
    types = {**{c: pa.float64() for c in feat}, **{c: pa.string() for c in pas}}
    failed = False
    try:
        f.seek(offset)
        if offset == 0 and f.read(len(_BOM)) != _BOM:
            f.seek(0)
        read_options = pcsv.ReadOptions(column_names=names, use_threads=True)
        parse_options = pcsv.ParseOptions(
            delimiter=reader.delim, quote_char='"', double_quote=True, newlines_in_values=True
        )
        convert_options = pcsv.ConvertOptions(
            column_types=types,
            include_columns=names,
            null_values=_null_values(),
            strings_can_be_null=False,
            quoted_strings_can_be_null=True,
        )
        whole = reader.whole_file
        size = sys.maxsize if whole else reader.chunk_lines
        pnames = [reader.all_names[j] for j in reader.pas]
        X, P, filled = _rows(0, size, len(feat)), {k: [] for k in pnames}, 0  # the chunk being filled
        remaining = os.fstat(f.fileno()).st_size - offset
        for block in _blocks(f):
            block_bytes = len(block)
            table = pcsv.read_csv(
                pa.py_buffer(block),
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert_options,
                memory_pool=pa.system_memory_pool(),  # mimalloc would keep ~40 MB of freed blocks
            )
            del block
            if any(pc.any(pc.is_nan(table.column(c))).as_py() for c in feat):
                # NaN spelled in a way that is not an NA token ("nan(1)"): let the stdlib judge
                raise pa.ArrowInvalid("a NaN the stdlib reader must judge")
            columns = [_floats(table.column(c)) for c in feat]
            texts = [table.column(c).to_pylist() for c in pas]
            n_rows, start = table.num_rows, 0
            del table  # memory: this block's values and the chunk, as on the stdlib path
            if whole and filled == 0 and n_rows:
                # The whole file in one matrix, sized once from the first block's bytes per
                # row: no growing copies, and no concatenation of chunks after (320 MB each
                # on 2,000,000 x 20 rows). Rows never written are never touched, so an
                # estimate too high costs address space, not memory; too low, it doubles.
                # No row is shorter than one byte per column, so the estimate stays below
                # about 1.05 x (file bytes / columns) rows: at most 8.4 bytes per file byte.
                estimate = int(remaining / block_bytes * n_rows * 1.05) + 1024
                X = np.empty((max(n_rows, estimate), len(feat)))
            while start < n_rows:
                take = min(n_rows - start, size - filled)
                if filled + take > X.shape[0]:
                    X = _rows(filled + take, size, len(feat), X[:filled])
                for t, column in enumerate(columns):
                    X[filled : filled + take, t] = column[start : start + take]
                for name, values in zip(pnames, texts, strict=True):
                    P[name].extend(values[start : start + take])
                filled, start = filled + take, start + take
                if filled == size:
                    yield _Chunk(X, P, _where(finder, emitted))
                    emitted += filled
                    X, P, filled = _rows(0, size, len(feat)), {k: [] for k in pnames}, 0
        if filled:  # the last chunk: copied to its size, unless it is the whole file (a view)
            yield _Chunk(X[:filled] if whole else X[:filled].copy(), P, _where(finder, emitted))
            emitted += filled
    except (pa.ArrowInvalid, UnicodeDecodeError):
        failed = True
    finally:
        f.close()
    if failed or emitted == 0:  # the stdlib reader reports the error, or "no data rows"
        yield from _resume(reader, emitted)


def _blocks(f: Any) -> Iterator[memoryview | bytes]:
    """The file from its position in blocks of about :data:`BLOCK_BYTES` that end at a line end.

    Read here rather than by ``pyarrow.csv.open_csv``, whose background read-ahead buffers up
    to 32 blocks while a slow consumer scores the previous chunk: this way memory is one block
    plus one chunk, as on the stdlib path. A quoted line break that happens to straddle a
    block's end makes that block fail to parse, and the stdlib reader takes over from there.
    """
    carry = b""
    while True:
        data = f.read(BLOCK_BYTES)
        if not data:
            if carry:
                yield carry
            return
        data = carry + data if carry else data
        cut = data.rfind(b"\n") + 1
        if cut == 0:  # no line end yet: keep reading (one very long line)
            carry = data
            continue
        carry = data[cut:]
        yield memoryview(data)[:cut]  # no copy


def _floats(column: Any) -> np.ndarray:
    """A float64 column as numpy, nulls (NA tokens) as NaN; chunk by chunk, so chunks without
    nulls are views and no copy goes through Arrow's allocator (which keeps freed memory)."""
    parts = [to_numpy(chunk) for chunk in column.chunks]
    if not parts:
        return np.empty(0)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _rows(needed: int, size: int, width: int, kept: np.ndarray | None = None) -> np.ndarray:
    """Room for at least ``needed`` rows of a chunk of at most ``size``, ``kept`` copied in.

    Grown by doubling from 65,536 rows, so a huge ``--chunk-size`` on a small file does not
    reserve the whole chunk up front.
    """
    rows = min(size, max(65_536, 2 * needed))
    out = np.empty((rows, width))
    if kept is not None:
        out[: kept.shape[0]] = kept
    return out


def _where(finder: Callable[[int], dict], first: int) -> Callable[[int], dict]:
    return lambda i: finder(first + int(i))


def _resume(reader: _CsvReader, skip: int) -> Iterator[_Chunk]:
    """The stdlib reader's chunks after the first ``skip`` records (those Arrow delivered)."""
    for chunk in _stdlib_reader(reader)._chunks():
        n = chunk.X.shape[0]
        if skip >= n:
            skip -= n
            continue
        if skip:
            where = chunk.where
            chunk = _Chunk(
                chunk.X[skip:],
                {k: v[skip:] for k, v in chunk.passthrough.items()},
                lambda i, where=where, skip=skip: where(int(i) + skip),
            )
            skip = 0
        yield chunk


# -- writing


def write_rows(f: Any, values: list[Any], kinds: list[str], delimiter: str) -> bool:
    """Write score rows (no header) with Arrow; False, writing nothing, when the csv module must.

    ``values`` and ``kinds`` are a ``_Batch``'s: passthrough lists, then the score, label and
    extra arrays.
    """
    if "pyarrow.csv" not in sys.modules and (not values or len(values[0]) < MIN_ROWS):
        return False
    mods = _pyarrow()
    if mods is None:
        return False
    pa, pcsv, pc = mods
    arrays = []
    for v, kind in zip(values, kinds, strict=True):
        if kind == "pass":
            if not all(type(x) is str for x in v):
                return False  # numbers, None...: the csv module's str() is the reference
            arr = pa.array(v, pa.string())
            if (
                len(arr)
                and pc.any(pc.match_substring_regex(arr, f'["\r\n{_regex_escape(delimiter)}]')).as_py()
            ):
                return False  # needs quoting: the csv module's exact quoting rules
            arrays.append(arr)
            continue
        a = np.asarray(v)
        if a.dtype.kind not in "iuf":
            return False  # bools: the csv module writes True/False
        arrays.append(
            _repr_strings(a.astype(np.float64), pa, pc) if a.dtype.kind == "f" else from_numpy(a, pa)
        )
    if not arrays or not len(arrays[0]):
        return True
    table = pa.Table.from_arrays(arrays, names=[f"c{j}" for j in range(len(arrays))])
    options = pcsv.WriteOptions(include_header=False, delimiter=delimiter, quoting_style="none")
    pcsv.write_csv(table, f, options, memory_pool=pa.system_memory_pool())
    return True


def _repr_strings(a: np.ndarray, pa: Any, pc: Any) -> Any:
    """Floats as the csv module writes them (``repr``; NaN as an empty cell), as Arrow strings.

    Arrow's cast gives the same shortest round-trip digits as ``repr`` but its own notation
    for integers (``3`` for ``3.0``), small (``0.00001``) and large (``1.2e+10``) magnitudes.
    Where the two agree (checked on 2 million random values: non-integers with
    1e-4 <= |x| < 1e10, the usual scores) Arrow's text is kept; the rest get ``repr``.
    """
    text = pc.cast(from_numpy(a, pa), pa.string())
    magnitude = np.abs(a)
    with np.errstate(invalid="ignore"):
        same = np.isfinite(a) & (magnitude >= 1e-4) & (magnitude < 1e10) & (a != np.floor(a))
    if same.all():
        return text
    fixed = ["" if math.isnan(x) else repr(x) for x in a[~same].tolist()]
    return pc.replace_with_mask(text, pa.array(~same), pa.array(fixed, pa.string()))


def _regex_escape(delimiter: str) -> str:
    return "\\t" if delimiter == "\t" else "\\" + delimiter
