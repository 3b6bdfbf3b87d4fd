"""A job's request and record: what a client asks for, and what it is told back (the JSON shape).

The request is validated here, once, for every queue: unknown fields, kinds and priorities are
refused with a one-line :class:`~adcore.errors.ParameterError`, so a misspelt option never sits
in a queue for an hour before it fails. The record is what ``GET /v1/jobs/ID`` and
``adcore jobs show ID`` print.
"""

from __future__ import annotations

import math
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from adcore.errors import AdcoreError, ParameterError

KINDS = ("score", "fit", "detect")
PRIORITIES = ("high", "normal", "low")
STATUSES = ("queued", "started", "finished", "failed", "canceled")
DEFAULT_PRIORITY = "normal"
#: fields each kind accepts besides ``kind`` and ``priority``
_DETECTOR = ("algorithm", "params", "contamination", "threshold", "seed")
_FILES = ("input", "executor", "columns", "header", "nan")
_FIELDS: dict[str, frozenset[str]] = {
    "score": frozenset({"model", "output", "chunk_size", *_FILES}),
    "fit": frozenset({"name", "sample", *_DETECTOR, *_FILES}),
    "detect": frozenset({"data", "feature_names", *_DETECTOR}),
}
_REQUIRED = {"score": ("model", "input"), "fit": ("algorithm", "input", "name"), "detect": ("data",)}


def new_job_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class JobRequest:
    """A validated job request: ``kind``, ``priority`` and the kind's own fields in ``spec``."""

    kind: str
    priority: str = DEFAULT_PRIORITY
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def input(self) -> str | None:
        return self.spec.get("input")

    @property
    def output(self) -> str | None:
        return self.spec.get("output")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "priority": self.priority, **self.spec}

    @classmethod
    def parse(cls, payload: Mapping[str, Any]) -> JobRequest:
        """Validate a client's JSON body (see the module docstring); raises ``ParameterError``."""
        if not isinstance(payload, Mapping):
            raise ParameterError("a job is a JSON object with at least 'kind'")
        kind = payload.get("kind")
        if kind not in KINDS:
            raise ParameterError(f"job kind must be one of {', '.join(KINDS)}, got {kind!r}")
        priority = payload.get("priority", DEFAULT_PRIORITY)
        if priority not in PRIORITIES:
            raise ParameterError(f"job priority must be one of {', '.join(PRIORITIES)}, got {priority!r}")
        spec = {k: v for k, v in payload.items() if k not in ("kind", "priority")}
        unknown = sorted(set(spec) - _FIELDS[kind])
        if unknown:
            raise ParameterError(
                f"unknown field(s) for a {kind} job: {', '.join(unknown)} "
                f"(known: {', '.join(sorted(_FIELDS[kind]))})"
            )
        missing = [k for k in _REQUIRED[kind] if spec.get(k) in (None, "")]
        if missing:
            raise ParameterError(f"a {kind} job needs {', '.join(missing)}")
        for key in ("model", "input", "output", "executor", "algorithm", "name", "threshold", "nan"):
            if key in spec and spec[key] is not None and not isinstance(spec[key], str):
                raise ParameterError(f"{key} must be a string, got {type(spec[key]).__name__}")
        if kind == "detect":
            _check_rows(spec["data"])
        if kind in ("fit", "detect") and spec.get("seed") is None:
            # drawn now, not by the worker: a rerun (after a dead worker) fits the same detector,
            # and the job's record says which seed repeats it
            spec["seed"] = secrets.randbelow(2**31)
        return cls(kind, priority, spec)


def _check_rows(data: Any) -> None:
    """Inline rows: a non-empty list of equal-length lists of finite numbers (Redis holds them)."""
    if not isinstance(data, list) or not data or not all(isinstance(r, list) for r in data):
        raise ParameterError("data must be a non-empty list of rows (lists of numbers)")
    width = len(data[0])
    for i, row in enumerate(data):
        if len(row) != width:
            raise ParameterError(f"data row {i} has {len(row)} values, row 0 has {width}")
        for value in row:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ParameterError(f"data row {i}: every value must be a finite number, got {value!r}")


@dataclass
class JobRecord:
    """What a queue knows about one job; :meth:`to_dict` is the API's and the CLI's JSON."""

    id: str
    kind: str
    priority: str
    status: str
    request: dict[str, Any]
    created_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    attempts: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        # the trace context the API attached for the worker's span is plumbing, not the request
        out["request"] = {k: v for k, v in self.request.items() if k not in _INTERNAL_FIELDS}
        out["input"] = self.request.get("input")
        out["output"] = self.request.get("output")
        for key in _HEADLINE:  # the figures a client polls for, next to the status
            if self.result and key in self.result:
                out[key] = self.result[key]
        return out


_HEADLINE = ("model", "version", "n_rows", "n_anomalies")
_INTERNAL_FIELDS = frozenset({"trace_context"})  # adcore.services.jobs.runner.TRACE_FIELD


def error_of(exc: BaseException) -> dict[str, str]:
    """The one line the CLI would print for ``exc``, and its type (``ParameterError``...).

    A user error (an :class:`~adcore.errors.AdcoreError`) keeps its message's first line; anything
    else is a bug, worded as the CLI words it.
    """
    if isinstance(exc, AdcoreError):
        text = str(exc)
        return {"type": type(exc).__name__, "message": text.splitlines()[0] if text else type(exc).__name__}
    return {
        "type": type(exc).__name__,
        "message": f"unexpected {type(exc).__name__}: {exc} "
        "(this is a bug; the worker's log has the traceback)",
    }
