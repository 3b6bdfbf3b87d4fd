"""JSON and JSON Lines files: one record (an object or an array) per row.

The first record fixes the columns. orjson is used when installed, but the stdlib decides on
anything orjson refuses, so what is accepted and the error messages do not depend on it.
"""

from __future__ import annotations

import itertools
import json
import operator
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from adcore.errors import DataError
from adcore.io.checks import (
    _JSON_NUMBER_TYPES,
    _check_unique,
    _describe_names,
    _feature_hint,
    _resolve_columns,
)
from adcore.io.source import Locator, _Chunk, _line_locator, _open_binary, _row_locator, _Source


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

    def __init__(
        self,
        first: Any,
        columns: Sequence[str] | None,
        path: str,
        where: dict,
        names: list[str] | None = None,
    ) -> None:
        self.path, self.columns = path, columns
        if isinstance(first, dict):
            self.kind = "object"
            keys = [str(k) for k in first]
            if not keys:
                raise DataError(
                    "the first record is an empty object; it defines the columns", path=path, **where
                )
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
            raise DataError(
                f"expected a JSON object or array per record, got {type(first).__name__}", path=path, **where
            )

    def convert(self, records: list, where: Locator) -> tuple[np.ndarray, dict[str, list]]:
        path = self.path
        want = dict if self.kind == "object" else list
        for i, r in enumerate(records):
            if type(r) is not want:
                raise DataError(
                    f"expected a JSON {self.kind} like the first record, got {type(r).__name__}",
                    path=path,
                    **where(i),
                )
        nf = len(self.feat_keys)
        get = operator.itemgetter(*self.feat_keys)
        if self.kind == "array":
            for i, r in enumerate(records):
                if len(r) != self.width:
                    raise DataError(
                        f"this record has {len(r)} values, expected {self.width}", path=path, **where(i)
                    )
        try:
            rows = [get(r) for r in records] if nf > 1 else [(get(r),) for r in records]
        except KeyError:
            for i, r in enumerate(records):
                for k in self.feat_keys:
                    if k not in r:
                        raise DataError(
                            "missing key; every record needs every feature key",
                            path=path,
                            column=k,
                            **where(i),
                        ) from None
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
                        raise DataError(
                            f"{_json_kind(v)}; {_feature_hint(self.columns, name)}",
                            path=path,
                            column=name,
                            **where(i),
                        )
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
            X, pt = layout.convert(records[s : s + step], _row_locator(s))
            yield _Chunk(X, pt, _row_locator(s))

    return _Source(layout.names, chunks())
