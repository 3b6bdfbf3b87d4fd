"""Typed decoding of a stream whose records all share one shape (the common case).

Most streams send the same keys in every record: an id, a few context fields, the
features. For those, decoding each line into a msgspec ``Struct`` built from the first
record's keys is about twice as fast as decoding into a dict, and the feature values
are type-checked in C on the way (a string, bool, null or out-of-range number fails the
decode). Pass-through fields are kept as ``msgspec.Raw``: their exact JSON text goes to
the output without being parsed and serialised again.

Anything unusual (an extra or missing key, a wrong type, a line that is not JSON, a
blank line) makes :meth:`TypedLayout.decode` return ``None`` for the whole batch, and the
general dict path of :class:`~adcore.services.streaming.records.RecordDecoder` decodes it and names
each problem. So this module changes speed, never which records are accepted.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np

try:
    import msgspec
except ImportError:  # pragma: no cover - a core dependency; the dict path works without it
    msgspec = None

#: Output fields only the service writes (``warmup``, ``model``, ``_meta``): an input field
#: of the same name never passes through, so a record cannot spoof its own attribution.
#: (``score`` and ``label`` are always written, so they overwrite an input field in place.)
SERVICE_FIELDS = frozenset({"warmup", "model", "_meta"})

#: Records with more keys than this are decoded the general way (a Struct per shape is
#: cheap, but very wide records are rare in streams and gain little).
MAX_KEYS = 256


class TypedLayout:
    """A Struct type for one record shape: ``keys`` in order, ``features`` typed float."""

    def __init__(self, keys: Sequence[str], features: Sequence[str]) -> None:
        assert msgspec is not None
        feature_set = set(features)
        attrs = {key: f"k{i}" for i, key in enumerate(keys)}
        # int | float: an integer feature stays an integer in a --keep-features output, as
        # on the dict path; msgspec rejects bools for both.
        fields = [(attrs[k], int | float if k in feature_set else msgspec.Raw) for k in keys]
        self.struct = msgspec.defstruct(
            "StreamRecord",
            fields,
            rename={attr: key for key, attr in attrs.items()},
            forbid_unknown_fields=True,
            gc=False,  # records hold no reference cycles; skipping GC tracking is faster
            namespace={"get": _get, "_layout": self},
        )
        self._decode = msgspec.json.Decoder(self.struct).decode
        #: JSON bytes of an output dict that may hold ``msgspec.Raw`` pass-through values
        #: (the encoder's own method: no Python frame per record).
        self.dumps = msgspec.json.Encoder().encode
        self.attrs = attrs
        self.width = len(features)
        names = [attrs[f] for f in features]
        self._features = operator.attrgetter(*names)
        self.all_keys = tuple(k for k in keys if k not in SERVICE_FIELDS)
        self.pass_keys = tuple(k for k in self.all_keys if k not in feature_set)
        self._all = operator.attrgetter(*(attrs[k] for k in self.all_keys)) if self.all_keys else None
        self._pass = operator.attrgetter(*(attrs[k] for k in self.pass_keys)) if self.pass_keys else None
        self._errors: tuple[type[Exception], ...] = (msgspec.DecodeError, msgspec.ValidationError)

    @classmethod
    def for_record(cls, record: Any, features: Sequence[str]) -> TypedLayout | None:
        """A layout for ``record``'s shape, or ``None`` when it cannot have one."""
        if msgspec is None or type(record) is not dict or len(record) > MAX_KEYS:
            return None
        if not all(isinstance(k, str) for k in record) or not set(features) <= record.keys():
            return None
        return cls(list(record), features)

    def decode(self, items: Sequence[Any]) -> tuple[np.ndarray, list[Any]] | None:
        """``(X, records)`` for a batch where every item has this shape, else ``None``."""
        try:
            records = list(map(self._decode, items))
        except self._errors:
            return None
        except TypeError:  # an item that is neither bytes nor str
            return None
        if self.width == 1:
            values = list(map(self._features, records))
        else:
            values = list(chain.from_iterable(map(self._features, records)))
        X = np.array(values, dtype=np.float64).reshape(len(records), self.width)
        if not np.isfinite(X).all():  # out-of-range numbers already failed; belt and braces
            return None
        return X, records

    def passthrough(self, records: Sequence[Any], keep_features: bool) -> list[dict[str, Any]]:
        """Output dicts of each record's pass-through fields (all fields with ``keep_features``)."""
        keys, getter = self._picked(keep_features)
        if getter is None:
            return [{} for _ in records]
        if len(keys) == 1:
            key = keys[0]
            return [{key: value} for value in map(getter, records)]
        return [dict(zip(keys, values, strict=True)) for values in map(getter, records)]

    def _picked(self, keep_features: bool) -> tuple[tuple[str, ...], Any]:
        """The output's copied keys and the getter of their values (``None``: no keys)."""
        return (self.all_keys, self._all) if keep_features else (self.pass_keys, self._pass)

    def scored(
        self, records: Sequence[Any], scores: Sequence[Any], labels: Sequence[int], keep_features: bool
    ) -> list[dict[str, Any]]:
        """Output dicts with ``score`` and ``label`` built in one comprehension.

        The same dicts as :meth:`passthrough` followed by setting the two keys (an input
        field called ``score`` or ``label`` keeps its place and gets the new value), in
        about half the time: this runs once per scored record.
        """
        keys, getter = self._picked(keep_features)
        if getter is not None and len(keys) == 1:  # the usual {"id": ..., features} record
            key = keys[0]
            return [
                {key: v, "score": s, "label": lab}
                for v, s, lab in zip(map(getter, records), scores, labels, strict=True)
            ]
        outs = self.passthrough(records, keep_features)
        for out, s, lab in zip(outs, scores, labels, strict=True):
            out["score"] = s
            out["label"] = lab
        return outs

    def value(self, record: Any, key: str, default: Any = None) -> Any:
        """The Python value of ``key`` in ``record`` (pass-through fields are parsed here)."""
        attr = self.attrs.get(key)
        if attr is None:
            return default
        value = getattr(record, attr)
        return msgspec.json.decode(value) if isinstance(value, msgspec.Raw) else value


def _get(self: Any, key: str, default: Any = None) -> Any:
    """``record.get(key)`` as on a dict (events read a record's ``id`` this way)."""
    return self._layout.value(self, key, default)


def layout_of(records: Sequence[Any]) -> TypedLayout | None:
    """The layout that decoded ``records`` (``None`` for dict or array records)."""
    if not records:
        return None
    return getattr(type(records[0]), "_layout", None)
