"""Records in and out: raw lines -> a feature matrix plus pass-through, and scores -> output lines.

Decoding is where a stream meets the outside world, so it never raises on a bad line: a
line that is not JSON, lacks a feature, holds a non-number (string, bool, null, NaN,
infinity) or an array of the wrong length becomes a :class:`Malformed` entry and the rest
of the batch goes on, in order. The common case (every value an int or float) is checked
with one pass over the batch and converted with one ``np.array`` call; only a batch that
fails that check is examined record by record to name the culprit.
"""

from __future__ import annotations

import base64
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np

from adcore.io import jsonio
from adcore.messaging import Item, Message
from adcore.services.streaming.typed import SERVICE_FIELDS, TypedLayout, layout_of

# Output fields the service writes; never picked as features when features are inferred.
SCORE, LABEL, WARMUP, MODEL, META = "score", "label", "warmup", "model", "_meta"
P_VALUE = "p_value"  # written with --output-p-values
RESERVED = frozenset({"id", SCORE, LABEL, WARMUP, MODEL, META, P_VALUE})
assert frozenset({WARMUP, MODEL, META}) == SERVICE_FIELDS
#: How much of an oversized record a dead letter quotes as ``line``.
PREVIEW_CHARS = 200
_NUMERIC = (int, float)


@dataclass
class Malformed:
    """A skipped line: what it was, where, and why (what the dead-letter sink receives).

    ``raw`` is the line exactly as the source gave it (``line`` is text for a report), so a
    dead-letter sink with ``write_malformed`` can keep the original bytes (adcore-kafka).
    A line that is not valid UTF-8 cannot be kept as JSON text without replacing bytes, so
    its JSON entry carries the original bytes too, as ``raw_base64``. ``preview`` marks an
    oversized record, whose ``line`` is only its beginning.
    """

    line_number: int
    line: str
    error: str
    metadata: Mapping[str, Any] | None = None
    raw: bytes | str | None = field(default=None, repr=False)
    preview: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line, "error": self.error, "line_number": self.line_number}
        raw = self.raw
        if not self.preview and isinstance(raw, (bytes, bytearray)) and not _is_utf8(raw):
            out["raw_base64"] = base64.b64encode(raw).decode("ascii")
        if self.metadata is not None:
            out[META] = dict(self.metadata)
        return out


def _is_utf8(raw: bytes | bytearray) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@dataclass
class DecodedBatch:
    """The valid records of one micro-batch, in input order, plus the malformed ones."""

    X: np.ndarray
    records: list[Any] = field(default_factory=list)  # parsed dict or list, for pass-through
    metadata: list[Mapping[str, Any] | None] = field(default_factory=list)
    line_numbers: list[int] = field(default_factory=list)
    malformed: list[Malformed] = field(default_factory=list)
    #: The batch's raw items, and the line number of the first: what a record the detector
    #: later rejects is sent to the dead letters as (see :meth:`rejected`).
    items: Sequence[Item] = ()
    first_line: int = 1

    def __len__(self) -> int:
        return len(self.records)

    def rejected(self, index: int, error: str) -> Malformed:
        """Record ``index`` as a dead letter: its raw line, line number, metadata and ``error``."""
        line_number = self.line_numbers[index]
        item = self.items[line_number - self.first_line]
        raw = item.value if type(item) is Message else item
        return Malformed(line_number, _text(raw), error, self.metadata[index], raw)


def _text(raw: Any) -> str:
    """The line as text for a report (invalid UTF-8 replaced, a CR of CRLF dropped)."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    return text.rstrip("\r")


def _is_number(value: Any) -> bool:
    return type(value) in _NUMERIC and math.isfinite(value)


def _describe(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)  # nan, inf
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = jsonio.dumps(value).decode("utf-8")
    return text if len(text) <= 40 else text[:37] + "..."


class RecordDecoder:
    """Turns raw lines into rows of the selected features.

    Features come from ``features`` (``--features``, or the model's names); when ``None``,
    from the first valid object record's numeric keys (``id`` and the output fields
    excluded), or ``x0..x{n-1}`` for a first record that is an array. ``n_features``
    (a model fitted without names) is the width every record must have.
    """

    def __init__(
        self,
        features: Sequence[str] | None = None,
        *,
        n_features: int | None = None,
        max_record_bytes: int | None = None,
    ) -> None:
        self.max_record_bytes = max_record_bytes
        self._names: list[str] | None = list(features) if features is not None else None
        self._n_features = n_features if features is None else len(self._names or [])
        self.line_number = 0
        self._layout: TypedLayout | None = None  # typed fast path, from the first clean batch
        self._layout_misses = 0  # consecutive batches the layout did not fit
        self._layout_rebuilds = 0

    @property
    def features(self) -> list[str] | None:
        """The feature names in use (``None`` until the first valid record when inferred)."""
        return self._names

    # -- feature discovery
    def _discover(self, obj: Any) -> str | None:
        """Fix the feature names from the first usable record; an error string if it is not."""
        if isinstance(obj, dict):
            names = [k for k, v in obj.items() if k not in RESERVED and _is_number(v)]
            if not names:
                return "no numeric field to use as a feature (pass --features)"
        elif isinstance(obj, list):
            if not obj or not all(_is_number(v) for v in obj):
                return "an array record must hold finite numbers only"
            names = [f"x{i}" for i in range(len(obj))]
        else:
            return f"a record must be a JSON object or array, got {_describe(obj)}"
        if self._n_features is not None and len(names) != self._n_features:
            return (
                f"has {len(names)} numeric field(s) but the model expects {self._n_features} "
                "features (pass --features)"
            )
        self._names = names
        self._n_features = len(names)
        return None

    # -- decoding
    def decode(self, items: Sequence[Item]) -> DecodedBatch:
        """Parse ``items``; valid records in order, malformed ones reported, never raised."""
        batch = None
        # The two fast paths take plain lines only: transport metadata (Message items) and
        # the first records (features not known yet) go record by record.
        if (
            self._names is not None
            and items
            and Message not in set(map(type, items))
            and not self._has_oversized(items)
        ):
            batch = self._decode_typed(items)
            if batch is None:
                batch = self._decode_fast(items)
        if batch is None:
            batch = self._decode_each(items)
        batch.items, batch.first_line = items, self.line_number + 1
        self.line_number += len(items)
        return batch

    def _has_oversized(self, items: Sequence[Item]) -> bool:
        limit = self.max_record_bytes
        if limit is None:
            return False
        try:
            return max(map(len, items)) > limit  # type: ignore[arg-type]
        except TypeError:  # an item that is not a line: the record-by-record path names it
            return True

    def _oversized(self, ln: int, raw: bytes | str, meta: Mapping[str, Any] | None) -> Malformed | None:
        """A dead letter for a record over ``max_record_bytes`` (never parsed), else ``None``."""
        limit = self.max_record_bytes
        if limit is None or not isinstance(raw, (bytes, bytearray, str)) or len(raw) <= limit:
            return None
        error = f"record longer than {limit} bytes (--max-record-bytes): dropped"
        return Malformed(ln, _text(raw[:PREVIEW_CHARS]) + "...", error, meta, raw, preview=True)

    #: Batches in a row that may miss the typed layout before it is dropped (and rebuilt
    #: from the next clean batch), and how many rebuilds before the typed path is given up
    #: for this stream (records of many shapes: every miss costs a second parse).
    MAX_LAYOUT_MISSES = 3
    MAX_LAYOUT_REBUILDS = 10

    def _decode_typed(self, items: Sequence[Item]) -> DecodedBatch | None:
        """The fastest path: every line has the shape of the stream's first clean record."""
        layout = self._layout
        if layout is None:
            return None
        decoded = layout.decode(items)
        if decoded is None:
            self._layout_misses += 1
            if self._layout_misses >= self.MAX_LAYOUT_MISSES:
                self._layout, self._layout_misses = None, 0
                self._layout_rebuilds += 1
            return None
        self._layout_misses = 0
        X, records = decoded
        return self._clean_batch(X, records)

    def _clean_batch(self, X: np.ndarray, records: list[Any]) -> DecodedBatch:
        """A batch of plain lines that all became records: numbered from the next line."""
        first = self.line_number + 1
        return DecodedBatch(X, records, [None] * len(records), list(range(first, first + len(records))))

    def _decode_fast(self, items: Sequence[Item]) -> DecodedBatch | None:
        """The common case in C-level loops: every line parses and has every feature.

        Returns ``None`` as soon as anything is unusual (a line that is not JSON, a blank
        line, a missing feature, mixed object/array records); then :meth:`_decode_each`
        goes through the batch record by record and names each problem.
        """
        try:
            records = list(map(jsonio.loads, items))
        except ValueError:
            return None
        kinds = set(map(type, records))
        names = self._names or []
        width = len(names)
        if kinds == {dict}:
            getter = operator.itemgetter(*names)
            try:
                # One flat list of every value (rather than a tuple per record): about 15%
                # less work to type-check and convert.
                values = (
                    list(map(getter, records))
                    if width == 1
                    else list(chain.from_iterable(map(getter, records)))
                )
            except KeyError:
                return None
        elif kinds == {list} and set(map(len, records)) == {width}:
            values = list(chain.from_iterable(records))
        else:
            return None
        batch = self._clean_batch(np.empty((0, width)), records)
        if set(map(type, values)) <= {int, float}:
            try:
                X = np.array(values, dtype=np.float64).reshape(len(records), width)
            except OverflowError:  # an integer beyond float range: named below
                X = None
            if X is not None and np.isfinite(X).all():
                batch.X = X
                if (
                    self._layout is None
                    and kinds == {dict}
                    and self._layout_rebuilds <= self.MAX_LAYOUT_REBUILDS
                ):
                    self._layout = TypedLayout.for_record(records[0], names)
                return batch
        # Something is not a finite number: find and name it record by record.
        rows = [values[i : i + width] for i in range(0, len(values), width)]
        self._to_matrix(rows, items, batch)
        return batch

    def _decode_each(self, items: Sequence[Item]) -> DecodedBatch:
        """Record by record: discovers the features and names every malformed line."""
        loads = jsonio.loads
        rows: list[Any] = []
        records: list[Any] = []
        metas: list[Mapping[str, Any] | None] = []
        lines: list[int] = []
        raws: list[bytes | str] = []
        bad: list[Malformed] = []
        names = self._names
        width = self._n_features
        ln = self.line_number
        for item in items:
            ln += 1
            if type(item) is Message:
                raw, meta = item.value, item.metadata
            else:
                raw, meta = item, None
            too_long = self._oversized(ln, raw, meta)
            if too_long is not None:
                bad.append(too_long)
                continue
            try:
                obj = loads(raw)
            except ValueError as exc:
                if not raw.strip():
                    continue  # blank lines are not records
                bad.append(Malformed(ln, _text(raw), self._parse_error(raw, exc), meta, raw))
                continue
            if names is None:
                error = self._discover(obj)
                if error is not None:
                    bad.append(Malformed(ln, _text(raw), error, meta, raw))
                    continue
                names, width = self._names, self._n_features
            kind = type(obj)
            if kind is dict:
                try:
                    row = [obj[n] for n in names]  # type: ignore[union-attr]
                except KeyError as exc:
                    bad.append(Malformed(ln, _text(raw), f"missing feature {exc.args[0]!r}", meta, raw))
                    continue
            elif kind is list:
                if len(obj) != width:
                    bad.append(
                        Malformed(ln, _text(raw), f"array has {len(obj)} values, expected {width}", meta, raw)
                    )
                    continue
                row = obj
            else:
                error = f"a record must be a JSON object or array, got {_describe(obj)}"
                bad.append(Malformed(ln, _text(raw), error, meta, raw))
                continue
            rows.append(row)
            records.append(obj)
            metas.append(meta)
            lines.append(ln)
            raws.append(raw)
        batch = DecodedBatch(np.empty((0, width or 0)), records, metas, lines, bad)
        if rows:
            self._to_matrix(rows, raws, batch)
        if len(bad) > 1:
            bad.sort(key=lambda m: m.line_number)
        return batch

    @staticmethod
    def _parse_error(raw: bytes | str, exc: ValueError) -> str:
        try:
            jsonio.loads_lenient(raw)
        except ValueError:
            return f"not JSON: {exc}"
        if any(
            token in raw
            for token in ((b"NaN", b"Infinity") if isinstance(raw, bytes) else ("NaN", "Infinity"))
        ):
            return "not JSON: NaN and Infinity are not JSON numbers"
        return f"unsupported number: {exc}"

    def _to_matrix(self, rows: list[Any], raws: Sequence[Item], batch: DecodedBatch) -> None:
        """Fill ``batch.X``; rows with a non-number move to ``batch.malformed``."""
        types = set(map(type, chain.from_iterable(rows)))
        X: np.ndarray | None = None
        if types <= {int, float}:
            try:
                X = np.array(rows, dtype=np.float64)
            except OverflowError:  # an integer beyond float range
                X = None
        if X is not None:
            finite = np.isfinite(X).all(axis=1)
            if finite.all():
                batch.X = X
                return
            keep = finite.tolist()
        else:
            keep = [all(_is_number(v) for v in row) for row in rows]
        names = self._names or []
        for i, ok in enumerate(keep):
            if not ok:
                j = next(j for j, v in enumerate(rows[i]) if not _is_number(v))
                value = rows[i][j]
                what = names[j] if j < len(names) else j
                batch.malformed.append(
                    Malformed(
                        batch.line_numbers[i],
                        _text(raws[i]),
                        f"feature {what!r} is not a finite number: {_describe(value)}",
                        batch.metadata[i],
                        raws[i],  # type: ignore[arg-type]
                    )
                )
        idx = [i for i, ok in enumerate(keep) if ok]
        batch.records = [batch.records[i] for i in idx]
        batch.metadata = [batch.metadata[i] for i in idx]
        batch.line_numbers = [batch.line_numbers[i] for i in idx]
        kept_rows = [rows[i] for i in idx]
        batch.X = np.array(kept_rows, dtype=np.float64) if kept_rows else np.empty((0, len(names)))
        batch.malformed.sort(key=lambda m: m.line_number)


class OutputEncoder:
    """Builds output lines: pass-through fields, then ``score``, ``label`` and friends.

    A record's non-feature fields pass through unchanged (feature values too with
    ``keep_features``); an output field of the same name in the input is overwritten:
    ``score`` and ``label`` in place, while ``warmup``, ``model`` and ``_meta`` never pass
    through, so what the output says about a record's scoring is always the service's.
    """

    def __init__(
        self, features: Sequence[str], *, keep_features: bool = False, p_values: bool = False
    ) -> None:
        self.features = frozenset(features)
        self._drop = (frozenset() if keep_features else self.features) | SERVICE_FIELDS
        if p_values:  # the service's p_value, never an input field of that name
            self._drop |= {P_VALUE}
        self.keep_features = keep_features
        self.p_values = p_values
        self._pass_keys: tuple[str, ...] | None = None

    def passthrough(self, records: Sequence[Any]) -> list[dict[str, Any]]:
        """New dicts holding each record's non-feature fields (``{}`` for an array record).

        Records of a stream usually share one set of keys, so the keys are learned once and
        picked with ``itemgetter`` (C speed); a batch where that does not hold is handled
        record by record.
        """
        layout = layout_of(records)
        if layout is not None:
            return layout.passthrough(records, self.keep_features)
        drop = self._drop
        if self.keep_features and not any(type(obj) is dict and not drop.isdisjoint(obj) for obj in records):
            return [obj if type(obj) is dict else {} for obj in records]
        keys = self._pass_keys
        if keys is None and records and type(records[0]) is dict:
            keys = self._pass_keys = tuple(k for k in records[0] if k not in drop)
        if self.keep_features:
            keys = None
        if keys is not None and set(map(len, records)) == {len(keys) + len(self.features)}:
            try:
                if len(keys) == 1:
                    key = keys[0]
                    return [{key: value} for value in map(operator.itemgetter(key), records)]
                if keys:
                    return [
                        dict(zip(keys, values, strict=True))
                        for values in map(operator.itemgetter(*keys), records)
                    ]
                if set(map(type, records)) == {dict}:
                    return [{} for _ in records]
            except (KeyError, TypeError):  # other keys, or array records
                pass
        return [
            {k: v for k, v in obj.items() if k not in drop} if type(obj) is dict else {} for obj in records
        ]

    def encode(
        self,
        records: Sequence[Any],
        metadata: list[Mapping[str, Any] | None],
        scores: Sequence[float | None] | None,
        labels: Sequence[int] | None,
        *,
        model: str | None = None,
        p_values: Sequence[float | None] | None = None,
    ) -> list[bytes]:
        """One JSON line per record; ``scores=None`` marks the records as warm-up.

        An encoder built with ``p_values=True`` writes ``p_value`` on every line (null where
        ``p_values`` is None: warm-up, or a calibration still settling).
        """
        layout = layout_of(records)
        hot = (
            layout is not None
            and scores is not None
            and labels is not None
            and model is None
            and not self.p_values
        )
        if hot and metadata.count(None) == len(metadata):  # the common case, in one pass
            return list(map(layout.dumps, layout.scored(records, scores, labels, self.keep_features)))
        outs = self.passthrough(records)
        n = len(outs)
        score_list: Sequence[float | None] = [None] * n if scores is None else scores
        label_list: Sequence[int | None] = [None] * n if labels is None else labels
        for rec, score, label in zip(outs, score_list, label_list, strict=True):
            rec[SCORE] = score
            rec[LABEL] = label
        if self.p_values:
            for rec, p in zip(outs, [None] * n if p_values is None else p_values, strict=True):
                rec[P_VALUE] = p
        if scores is None:
            for rec in outs:
                rec[WARMUP] = True
        if model is not None:
            for rec in outs:
                rec[MODEL] = model
        if metadata.count(None) != len(metadata):
            for rec, meta in zip(outs, metadata, strict=True):
                if meta is not None:
                    rec[META] = meta if type(meta) is dict else dict(meta)
        return list(map(layout.dumps if layout is not None else jsonio.dumps, outs))
