"""CSV and TSV files, read in blocks of lines (see `_CsvReader` for the fast and slow paths)."""

from __future__ import annotations

import csv
import itertools
import operator
import re
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from adcore.errors import DataError
from adcore.io.checks import _check_unique, _feature_hint, _plural, _resolve_columns
from adcore.io.source import _Chunk, _line_locator, _open_binary, _Source

# CSV cells read as NaN (compared after strip + lower); "-nan"/"+nan" parse as floats anyway.
NA_TOKENS = frozenset({"", "nan", "na", "n/a", "null", "none"})
# What a CSV user means by a number: ASCII digits, a sign, a decimal point, an exponent, or the
# words inf/infinity/nan. Python's float() and numpy's str->float cast also take "1_000", Arabic-
# Indic and full-width digits, and numpy drops a trailing NUL byte: none of those is data.
_NUMBER_RE = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)", re.IGNORECASE
)
# The same, as a character table for whole blocks (index 128 = any non-ASCII character; 0 = the
# padding of numpy's fixed-width strings): a cell with another character is not a number.
_NUMBER_CHARS = np.zeros(129, dtype=bool)
_NUMBER_CHARS[[0, *map(ord, "0123456789+-.eEinfINFtyTYaA")]] = True
_BOM = b"\xef\xbb\xbf"
_BLANK_LINES = frozenset({b"", b"\n", b"\r\n", b"\r"})


class _CsvReader:
    """CSV/TSV in blocks of lines, parsed by numpy when the block is plain and by `csv` when not.

    Fast path: numpy.loadtxt on the raw lines (quotes allowed within a line); on failure the same
    block with NA tokens rewritten to "nan" (only when it has no quotes, where that rewrite is
    safe). Anything else (quoted newlines, bad cells, ragged rows, bad UTF-8) goes to the slow
    path, which splits with the stdlib csv module and converts each block with one numpy call, and
    which is the one that pinpoints errors. Both paths give the same values; the fast one only
    exists because building a Python string per cell costs several seconds per million rows.
    """

    #: Set by a caller that reads the whole file into one matrix (``read_dataset``): Arrow then
    #: fills one matrix sized for the file instead of chunks of ``chunk_lines``.
    whole_file = False

    def __init__(
        self,
        path: str,
        delimiter: str,
        chunk_lines: int,
        columns: Sequence[str] | None,
        header: bool | None,
        fileobj: Any = None,
    ) -> None:
        # `fileobj`: an open, seekable binary file to read instead of opening `path` (which then
        # only names it in messages), e.g. an s3:// object opened by fsspec; the reader closes it.
        self.path = path
        self.delim = delimiter
        self.bdelim = delimiter.encode()
        self.chunk_lines = chunk_lines
        self.columns = columns
        self.lineno = 0  # lines consumed so far
        self.f = _open_binary(path) if fileobj is None else fileobj
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
        self._nul_in_block = False  # the block the slow path is converting has a NUL byte

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
            tokens = [i for i in _find_all(low, b"na") if low[i + 2 : i + 3] != b"n"]  # not "nan"
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
            lines[0] = lines[0][len(_BOM) :]
        self.lineno += len(lines)
        return lines

    def _decode(self, raw: bytes, line: int) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(
                f"is not UTF-8 text (bad byte at position {e.start + 1} of the line); save the file as UTF-8",
                path=self.path,
                line=line,
            ) from None

    def _split(self, lines: list[bytes], start: int) -> tuple[list[list[str]], list[int]]:
        """Split `lines` (the first at line `start`) with the csv module.

        A quoted field may run past the block: the reader then pulls the rest of that record from
        the file, which csv allows because it never reads beyond the record it is on.
        """
        consumed = 0
        self._nul_in_block = False  # numpy would silently drop a trailing NUL: _to_float checks cells

        def feed() -> Iterator[str]:
            nonlocal consumed
            for raw in itertools.chain(lines, self._more_lines()):
                consumed += 1
                self._nul_in_block = self._nul_in_block or b"\x00" in raw
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
                raise DataError(
                    f"malformed CSV ({e}); check the quoting", path=self.path, line=start + consumed - 1
                ) from None
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            rows.append(row)
            rec_lines.append(begin)
        return rows, rec_lines

    def _more_lines(self) -> Iterator[bytes]:
        """Lines past the block, for a quoted field that runs on (counted in ``lineno``)."""
        for raw in self.f:
            self.lineno += 1
            yield raw

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
        from adcore.io.arrow_csv import arrow_source  # pyarrow's reader where it reads the same values

        return arrow_source(self) or _Source(self.names, self._chunks())

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
            what = (
                f"has a header row (line {self.header_line}) but no data rows"
                if self.has_header
                else "has no data rows"
            )
            raise DataError(f"the file {what}; add data rows below the header", path=self.path)

    # -- fast path

    def _loadtxt(
        self, lines: list[bytes], usecols: list[int] | None, dtype: Any, encoding: str
    ) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": blank block
            return np.loadtxt(
                lines,
                dtype=dtype,
                delimiter=self.delim,
                comments=None,
                quotechar='"',
                ndmin=2,
                usecols=usecols,
                encoding=encoding,
            )

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
            if bad and (
                bad != {0} or any(ln.count(self.bdelim) == 0 and ln not in _BLANK_LINES for ln in lines)
            ):
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

    def _slow(
        self, rows: list[list[str]], rec_lines: list[int]
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
                    path=self.path,
                    line=rec_lines[k],
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
        """The feature cells as floats in one numpy call; the first cell that is not a number
        (by :data:`_NUMBER_RE`, checked for the whole block at once) is reported by line."""
        S = np.char.strip(np.array(cells, dtype=str))
        na = np.isin(np.char.lower(S), list(NA_TOKENS))
        if not self._nul_in_block and (na | _plain_number_chars(S)).all():
            try:
                return np.where(na, "nan", S).astype(np.float64).reshape(len(cells), len(self.feat))
            except ValueError:
                pass
        # Find the first bad cell in reading order; if every cell is a number, use them.
        out = np.empty((len(cells), len(self.feat)))
        for i, row in enumerate(cells):
            for t, c in enumerate(row):
                s = c.strip()
                if s.lower() in NA_TOKENS:
                    out[i, t] = np.nan
                    continue
                try:
                    out[i, t] = _strict_float(s)
                except ValueError:
                    name = self.all_names[self.feat[t]]
                    raise DataError(
                        f"{c!r} is not a number; {_feature_hint(self.columns, name)}",
                        path=self.path,
                        line=int(lines[i]),
                        column=name,
                    ) from None
        return out


def _find_all(hay: bytes, needle: bytes) -> Iterator[int]:
    i = hay.find(needle)
    while i >= 0:
        yield i
        i = hay.find(needle, i + 1)


def _strict_float(text: str) -> float:
    """``float(text)`` for what :data:`_NUMBER_RE` calls a number; ValueError for anything else."""
    if not _NUMBER_RE.fullmatch(text):
        raise ValueError(f"not a number: {text!r}")
    return float(text)


def _plain_number_chars(S: np.ndarray) -> np.ndarray:
    """Per cell of a numpy str array: whether every character may appear in a number (vectorised).

    A cheap screen before numpy's cast (which would take "1_000" or Arabic-Indic digits); the cast itself then
    checks the order of the characters.
    """
    if S.size == 0 or S.dtype.itemsize == 0:
        return np.ones(S.shape, dtype=bool)
    codes = np.ascontiguousarray(S).view(np.uint32).reshape(*S.shape, S.dtype.itemsize // 4)
    return _NUMBER_CHARS[np.minimum(codes, 128)].all(axis=-1)


def _is_number_cell(cell: str) -> bool:
    s = cell.strip()
    if s.lower() in NA_TOKENS:
        return True
    try:
        _strict_float(s)
    except ValueError:
        return False
    return True
