"""Stored time-series models: one fitted detector per series in one model version.

``adcore fit --algo ts:auto --time T --series S --input history.csv --model cpu`` fits one
causal detector per series on that series' whole history (its warm-up), so each state is
primed to the history's end; the detectors are small numpy state and are pickled together,
``{series: detector}``, as one artifact of the model store, with its SHA-256 checked before
loading as for every model (:func:`adcore.services.registry.verify_artifact`). The model
record says ``algorithm = "ts:auto"``, the parameters, the series count and the columns.

Later, ``adcore score --model cpu`` and ``adcore stream --model cpu`` continue each known
series where its history ended (no warm-up); a series the history did not have warms up
on arrival, as with ``--algo``. Scoring never writes back: the stored version keeps the
state of the end of its history, and scoring the same file twice gives the same scores.

Limits: the state is the end of the history only (no record of the history itself is
kept); a series too short to fit (fewer records than the detector's warm-up) is left out
of the model and warms up on arrival; a tabular-only path (``adcore.load_model``, the
server's model routes, the tabular stream) refuses a time-series model with a one-line error.
"""

from __future__ import annotations

import io
import pickle
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adcore.errors import AdcoreError, DataError, StoreError

TS_ARTIFACT_FORMAT = "adcore.tsmodel/1"


@dataclass
class TimeSeriesModel:
    """Fitted detectors by series key (``None`` for a file without a series column)."""

    algorithm: str
    params: dict[str, Any]
    detectors: dict[str | None, Any]
    last_times: dict[str | None, int]  # ns since the epoch: where each series' state ends
    time_column: str
    series_column: str | None
    value_column: str
    threshold: float
    n_records: int
    skipped: dict[str, str] = field(default_factory=dict)  # series left out -> why
    fit_seconds: float | None = None
    record: Any = None  # the ModelRecord once saved or loaded

    @property
    def ref(self) -> str | None:
        return self.record.ref if self.record is not None else None

    def state_nbytes(self) -> int:
        return sum(int(d.state_nbytes()) for d in self.detectors.values())

    # ---------------------------------------------------------------- saving
    def to_bytes(self) -> bytes:
        payload = {
            "format": TS_ARTIFACT_FORMAT,
            "algorithm": self.algorithm,
            "params": self.params,
            "detectors": self.detectors,
            "last_times": self.last_times,
            "columns": {"time": self.time_column, "series": self.series_column, "value": self.value_column},
            "threshold": self.threshold,
            "n_records": self.n_records,
            "skipped": self.skipped,
        }
        return pickle.dumps(payload, protocol=5)

    @classmethod
    def from_bytes(cls, data: bytes, *, record: Any = None) -> TimeSeriesModel:
        """Unpickle an artifact that passed :func:`~adcore.services.registry.verify_artifact`."""
        from adcore.services.models import _ArtifactUnpickler

        what = record.ref if record is not None else "the model"
        try:
            payload = _ArtifactUnpickler(io.BytesIO(data)).load()
        except Exception as exc:
            raise StoreError(f"cannot load {what}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(payload, dict) or payload.get("format") != TS_ARTIFACT_FORMAT:
            raise StoreError(
                f"{what}: the artifact is not an adcore time-series model ({TS_ARTIFACT_FORMAT})"
            )
        columns = payload["columns"]
        return cls(
            algorithm=payload["algorithm"],
            params=dict(payload["params"]),
            detectors=dict(payload["detectors"]),
            last_times=dict(payload["last_times"]),
            time_column=columns["time"],
            series_column=columns["series"],
            value_column=columns["value"],
            threshold=float(payload["threshold"]),
            n_records=int(payload["n_records"]),
            skipped=dict(payload.get("skipped") or {}),
            record=record,
        )

    def to_record(self, name: str) -> Any:
        """The model store's index entry (version, checksum and key filled by the store)."""
        from adcore.io.jsonio import jsonable
        from adcore.services.detect import library_versions
        from adcore.services.registry import ModelRecord, check_model_name

        metrics: dict[str, Any] = {
            "n_anomalies": 0,  # the history is the warm-up: nothing of it is scored
            "series": len(self.detectors),
            "skipped_series": len(self.skipped),
            "state_bytes": self.state_nbytes(),
        }
        if self.fit_seconds is not None:
            metrics["fit_seconds"] = round(self.fit_seconds, 6)
        return ModelRecord(
            name=check_model_name(name),
            version=0,
            algorithm=self.algorithm,
            params=jsonable(self.params),
            threshold=self.threshold,
            threshold_method=f"fixed:{self.threshold:g}",
            contamination=0.0,
            seed=None,
            n_samples=self.n_records,
            n_features=1,
            feature_names=[self.value_column],
            dtypes=["float64"],
            read_options={
                "kind": "timeseries",
                "time": self.time_column,
                "series": self.series_column,
                "value": self.value_column,
            },
            metrics=metrics,
            versions=library_versions(),
        )

    def save(self, name: str, *, store: Any = None) -> Any:
        """Store as the next version of ``name``; returns the record (``record.ref``)."""
        from adcore.services.models import _opened
        from adcore.services.registry import sha256_hex

        draft = self.to_record(name)
        data = self.to_bytes()
        draft = draft.replace(sha256=sha256_hex(data), size=len(data))
        with _opened(store) as opened:
            self.record = opened.add(draft, data)
        return self.record

    # --------------------------------------------------------------- scoring
    def _key(self, key: Any) -> str | None:
        """The stored key of a record's series key (a stream's JSON 7 finds the file's "7")."""
        if key is None or self.series_column is None:
            return None
        return key if isinstance(key, str) else str(key)

    def detector_for(self, key: Any) -> Any:
        """The stored detector of series ``key``, or ``None`` for a series the history lacked."""
        return self.detectors.get(self._key(key))

    def take(self, key: Any) -> tuple[Any, int | None] | None:
        """Hand series ``key``'s detector and end time (ns) over to a stream, once: a series
        the stream evicts and sees again warms up afresh, as any other."""
        stored = self._key(key)
        detector = self.detectors.pop(stored, None)
        return None if detector is None else (detector, self.last_times.get(stored))

    def score_table(
        self,
        values: np.ndarray,
        times: np.ndarray,
        series: Sequence[Any] | None,
        *,
        threshold: float | None = None,
    ) -> Any:
        """Score a later file: each known series continues its stored state, causally; a new
        series warms up on its first records (``adcore run``'s rule, scored 0). Records of a
        known series before the end of its history are refused: they are in its state already."""
        from adcore.timeseries.detectors import build_ts_detector
        from adcore.timeseries.run import TimeSeriesResult, default_warmup, group_rows, series_report

        x = np.asarray(values, dtype=np.float64).ravel()
        if not np.isfinite(x).all():
            raise DataError("the value column holds missing or non-finite values")
        if series is None and self.series_column is not None:
            raise DataError(f"the model has one state per {self.series_column!r}: name the series column")
        scores = np.zeros(x.size)
        reports = []
        for name, rows, resort in group_rows(times, series):
            key = None if series is None else name
            t = times[rows]
            detector = self.detector_for(key)
            warmup = 0
            if detector is None:
                warmup = default_warmup(rows.size)
                if rows.size <= warmup:
                    raise DataError(
                        f"series {name!r} is new to the model and has {rows.size} records, "
                        f"not more than a warm-up of {warmup}"
                    )
                detector = build_ts_detector(self.algorithm, **self.params)
                detector.fit(x[rows[:warmup]], t[:warmup])
                self.detectors[key] = detector
            else:
                end = self.last_times.get(key)
                if end is not None and int(t[0]) < end:
                    raise DataError(
                        f"series {name!r} starts at {_iso(int(t[0]))}, before the end of the model's "
                        f"history ({_iso(end)}): score what came after it"
                    )
            scores[rows[warmup:]] = detector.score_series(x[rows[warmup:]], t[warmup:])
            self.last_times[key] = int(t[-1])
            reports.append(series_report(name, t, warmup, resort, detector))
        cut = self.threshold if threshold is None else float(threshold)
        return TimeSeriesResult(scores, (scores >= cut).astype(np.int64), cut, self.algorithm, reports)


def fit_ts_model(
    algo: str,
    values: np.ndarray,
    times: np.ndarray,
    series: Sequence[Any] | None,
    *,
    time_column: str,
    series_column: str | None,
    value_column: str,
    params: Mapping[str, Any] | None = None,
    threshold: float | None = None,
) -> TimeSeriesModel:
    """One detector per series fitted on the series' whole history (the state ends where it ends).

    A series with fewer records than the detector's warm-up (or whose fit fails) is left
    out and listed in ``skipped``: it warms up on arrival later. No series fitted is an error.
    """
    from adcore.timeseries.detectors import DEFAULT_THRESHOLD, build_ts_detector
    from adcore.timeseries.run import group_rows
    from adcore.timeseries.stream import default_warmup

    name = "ts:" + algo.removeprefix("ts:")
    options = dict(params or {})
    probe = build_ts_detector(name, **options)  # a bad name or parameter fails before any work
    need = default_warmup(name, options, probe)
    x = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(x).all():
        raise DataError("the value column holds missing or non-finite values")
    started = time.perf_counter()
    detectors: dict[str | None, Any] = {}
    last: dict[str | None, int] = {}
    skipped: dict[str, str] = {}
    for key, rows, _ in group_rows(times, series):
        stored = None if series is None else key
        if rows.size < need:
            skipped[key] = f"{rows.size} records, fewer than the warm-up of {need}"
            continue
        detector = build_ts_detector(name, **options)
        try:
            detector.fit(x[rows], times[rows])
        except AdcoreError as exc:
            skipped[key] = str(exc).splitlines()[0]
            continue
        detectors[stored] = detector
        last[stored] = int(times[rows[-1]])
    if not detectors:
        first = next(iter(skipped.items()), ("", "no records"))
        raise DataError(f"no series could be fitted (series {first[0]!r}: {first[1]})")
    return TimeSeriesModel(
        algorithm=name,
        params=options,
        detectors=detectors,
        last_times=last,
        time_column=time_column,
        series_column=series_column,
        value_column=value_column,
        threshold=float(DEFAULT_THRESHOLD if threshold is None else threshold),
        n_records=int(x.size),
        skipped=skipped,
        fit_seconds=time.perf_counter() - started,
    )


def load_ts_model(ref: str, store: Any = None) -> TimeSeriesModel:
    """Load ``name[@version]`` after checking its SHA-256; a tabular model is refused."""
    from adcore.errors import ParameterError
    from adcore.services.models import _opened
    from adcore.services.registry import parse_model_ref, verify_artifact

    name, version = parse_model_ref(ref)
    with _opened(store, create=False) as opened:
        record = opened.get(name, version)
        if not is_ts_record(record):
            raise ParameterError(
                f"model {record.ref} is a tabular model ({record.algorithm}), not a time-series one"
            )
        data = verify_artifact(record, opened.read_artifact(record))
    return TimeSeriesModel.from_bytes(data, record=record)


def is_ts_record(record: Any) -> bool:
    return str(record.algorithm).startswith("ts:")


def _iso(ns: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ns / 1e9, timezone.utc).isoformat().replace("+00:00", "Z")
