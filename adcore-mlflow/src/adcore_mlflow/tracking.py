"""The ``mlflow`` monitor: adcore's events as MLflow runs.

``factory()`` takes no required options (the stream and CLI build monitors by name), so the
server and experiment come from MLflow's own variables: ``MLFLOW_TRACKING_URI`` and
``MLFLOW_EXPERIMENT_NAME`` (default ``adcore``). What each event becomes:

- ``model.saved`` (``adcore fit --mlflow``): one finished run named after the model
  (``payments@3``), with the detector's parameters as params, the fit's metrics
  (anomaly count, fit seconds, training-score quantiles, ROC-AUC/AP when labels exist) as
  metrics, and the model reference, algorithm, SHA-256 and store as tags;
- ``bench.completed`` (``adcore bench --mlflow``): a parent run with the bench's files
  (table, plot) as artifacts, and one nested run per detector and dataset with that
  record's numbers as metrics;
- ``detection.completed`` and ``drift.detected`` (``adcore stream --monitor mlflow``): one
  run per stream, open until the monitor is closed; each batch is a step.

Events are read through ``event.to_dict()`` (or a plain dict), so the monitor accepts the
shapes the lead's CLI publishes without importing the CLI.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from typing import Any

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
DEFAULT_EXPERIMENT = "adcore"
PARENT_TAG = "mlflow.parentRunId"
MAX_PARAM = 6000  # MLflow's limit on a param value
_SKIP = frozenset({"id", "type", "timestamp", "stream"})


class MlflowMonitor:
    """Sends events to MLflow (see the module docstring). Not thread-safe: one per stream."""

    def __init__(
        self, tracking_uri: str | None = None, experiment: str | None = None, **options: Any
    ) -> None:
        import mlflow

        from adcore_mlflow.logs import quiet_mlflow_logging

        quiet_mlflow_logging()
        self.tracking_uri = tracking_uri or mlflow.get_tracking_uri()
        self.experiment = experiment or os.environ.get(EXPERIMENT_ENV) or DEFAULT_EXPERIMENT
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        self._experiment_id: str | None = None
        self._streams: dict[str, tuple[str, int]] = {}  # stream -> (run id, next step)
        self.runs: list[str] = []  # every run this monitor started, in order

    # ---------------------------------------------------------------------- the port
    def record(self, event: Any) -> None:
        """Log one event; types this monitor does not know are ignored."""
        data = _as_dict(event)
        kind = data.get("type")
        if kind == "model.saved":
            self._model_saved(data)
        elif kind == "bench.completed":
            self._bench_completed(data)
        elif kind in ("detection.completed", "drift.detected"):
            self._stream_event(data)

    def close(self) -> None:
        """End the stream runs (a finished stream is a finished run)."""
        for run_id, _ in self._streams.values():
            self.client.set_terminated(run_id, "FINISHED")
        self._streams.clear()

    # ---------------------------------------------------------------------- events
    def _model_saved(self, data: Mapping[str, Any]) -> None:
        tags = {
            "adcore.event": "model.saved",
            "adcore.model": str(data.get("model", "")),
            "adcore.algorithm": str(data.get("algorithm", "")),
            "adcore.sha256": str(data.get("sha256", "")),
        }
        if data.get("store"):
            tags["adcore.store"] = str(data["store"])
        params = {
            "algorithm": data.get("algorithm"),
            "seed": data.get("seed"),
            "n_samples": data.get("n_samples"),
            "n_features": data.get("n_features"),
        }
        params.update({f"param.{k}": v for k, v in dict(data.get("params") or {}).items()})
        metrics = {"threshold": data.get("threshold")}
        metrics.update(_flatten(dict(data.get("metrics") or {})))
        run_id = self._start(str(data.get("model") or data.get("name") or "fit"), tags)
        self._log(run_id, params=params, metrics=metrics)
        self.client.set_terminated(run_id, "FINISHED")

    def _bench_completed(self, data: Mapping[str, Any]) -> None:
        parent = self._start("bench", {"adcore.event": "bench.completed"})
        records = list(data.get("records") or [])
        summary = list(data.get("summary") or [])
        params = {"n_records": len(records), "seed": data.get("seed")}
        self._log(parent, params=params, metrics=_summary_metrics(summary))
        for record in records:
            record = dict(record)
            name = f"{record.get('algorithm', '?')} on {record.get('dataset', '?')}"
            child = self._start(name, {"adcore.event": "bench.record", PARENT_TAG: parent})
            texts = {k: v for k, v in record.items() if not _is_number(v)}
            numbers = {k: v for k, v in record.items() if _is_number(v)}
            self._log(child, params=texts, metrics=numbers)
            self.client.set_terminated(child, "FINISHED")
        for path in data.get("artifacts") or []:
            if os.path.isfile(str(path)):
                self.client.log_artifact(parent, str(path))
        self.client.set_terminated(parent, "FINISHED")

    def _stream_event(self, data: Mapping[str, Any]) -> None:
        stream = str(data.get("stream") or "stream")
        if stream not in self._streams:
            run_id = self._start(f"stream {stream}", {"adcore.event": "stream", "adcore.stream": stream})
            self._streams[stream] = (run_id, 0)
        run_id, step = self._streams[stream]
        if data["type"] == "detection.completed":
            numbers = {k: v for k, v in data.items() if k not in _SKIP and _is_number(v)}
            scored = data.get("scored") or 0
            if _is_number(data.get("anomalies")) and scored:
                numbers["anomaly_rate"] = float(data["anomalies"]) / float(scored)
            self._log(run_id, metrics=numbers, step=step)
            self._streams[stream] = (run_id, step + 1)
        else:
            prefix = f"drift.{data.get('detector', 'drift')}"
            self._log(
                run_id,
                metrics={
                    f"{prefix}.statistic": data.get("statistic"),
                    f"{prefix}.p_value": data.get("p_value"),
                    f"{prefix}.offset": data.get("offset"),
                    "drift_events": 1,
                },
                step=step,
            )

    # ---------------------------------------------------------------------- helpers
    def _experiment_id_(self) -> str:
        if self._experiment_id is None:
            found = self.client.get_experiment_by_name(self.experiment)
            if found is None:
                try:
                    self._experiment_id = self.client.create_experiment(self.experiment)
                except Exception:  # created concurrently by another process
                    found = self.client.get_experiment_by_name(self.experiment)
                    if found is None:
                        raise
            if self._experiment_id is None and found is not None:
                self._experiment_id = str(found.experiment_id)
        assert self._experiment_id is not None
        return self._experiment_id

    def _start(self, name: str, tags: dict[str, str]) -> str:
        run = self.client.create_run(self._experiment_id_(), run_name=name, tags=tags)
        self.runs.append(run.info.run_id)
        return run.info.run_id

    def _log(
        self,
        run_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        step: int = 0,
    ) -> None:
        now = int(time.time() * 1000)
        batch_params = [
            Param(_key(k), str(v)[:MAX_PARAM]) for k, v in (params or {}).items() if v is not None
        ]
        batch_metrics = [
            Metric(_key(k), float(v), now, step) for k, v in (metrics or {}).items() if _is_number(v)
        ]
        self.client.log_batch(run_id, metrics=batch_metrics, params=batch_params, tags=[])


def _as_dict(event: Any) -> dict[str, Any]:
    if isinstance(event, Mapping):
        return dict(event)
    out = dict(event.to_dict())
    out.setdefault("type", getattr(event, "type", None))
    return out


def _is_number(value: Any) -> bool:
    """Finite ints and floats (not bools: a flag is a param, and MLflow refuses NaN in some stores)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(float(value))


def _flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"score_quantiles": {"0.5": x}}`` -> ``{"score_quantiles.0.5": x}``."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(dict(value), name + "."))
        else:
            out[name] = value
    return out


def _summary_metrics(summary: list[Any]) -> dict[str, Any]:
    """The bench summary rows as ``<detector>.<metric>`` metrics on the parent run."""
    out: dict[str, Any] = {}
    for row in summary:
        row = dict(row)
        who = str(row.get("detector") or row.get("algorithm") or row.get("name") or len(out))
        out.update({f"{who}.{k}": v for k, v in row.items() if _is_number(v)})
    return out


def _key(name: str) -> str:
    """MLflow keys allow letters, digits, '_', '-', '.', ' ', '/' and ':'; others become '_'."""
    return "".join(c if c.isalnum() or c in "_-. /:" else "_" for c in str(name))[:250]
