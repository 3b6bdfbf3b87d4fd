"""The ``core`` plugin: built-in detectors, stores, monitors and stream endpoints.

Everything is registered lazily by ``"module:attr"`` reference, exactly as an external
plugin wrapping a heavy library would, so listing algorithms imports nothing but this file.
"""

from __future__ import annotations

from adcore.hookspecs import Register, hookimpl

_DETECTORS = "adcore.builtin.detectors"


@hookimpl
def register_detectors(register: Register) -> None:
    register(
        "hbos",
        f"{_DETECTORS}:HBOS",
        summary="Histogram-based outlier score: sum of per-feature log inverse bin heights (fast, numpy)",
        params=f"{_DETECTORS}:HBOSParams",
        tags=("proximity-free", "fast"),
    )
    register(
        "mad",
        f"{_DETECTORS}:RobustZScore",
        summary="Robust z-score: |x - median| / (1.4826 MAD) per feature, aggregated over features",
        params=f"{_DETECTORS}:RobustZScoreParams",
        tags=("statistical", "fast"),
    )
    register(
        "mahalanobis",
        f"{_DETECTORS}:Mahalanobis",
        summary="Mahalanobis distance to the training mean under a (shrunk) covariance",
        params=f"{_DETECTORS}:MahalanobisParams",
        tags=("statistical", "linear"),
    )
    _register_online(register)
    register(
        "ensemble",
        "adcore.builtin.ensemble:Ensemble",
        summary="Several detectors fitted in parallel, scores normalised and combined (--algo a,b,c)",
        params="adcore.builtin.ensemble:EnsembleParams",
        tags=("ensemble",),
    )
    register(
        "auto",
        "adcore.builtin.auto:AutoDetector",
        summary="Label-free choice of detectors from the data, combined by agreement (reasoning "
        "in --json / --explain-choice)",
        params="adcore.builtin.auto:AutoParams",
        tags=("ensemble", "auto"),
    )


_ONLINE = "adcore.builtin.online"
#: Online detectors: (name, module:class, params model, summary). They learn record by record
#: (partial_fit / score_partial), so `adcore stream` drives them without refits.
_ONLINE_DETECTORS = (
    ("loda", "loda:OnlineLODA", "loda:LODAParams", "LODA: windowed histograms on sparse random projections"),
    (
        "rshash",
        "rshash:OnlineRSHash",
        "rshash:RSHashParams",
        "RS-Hash: windowed cell counts of random subspace grids",
    ),
    (
        "xstream",
        "xstream:OnlineXStream",
        "xstream:XStreamParams",
        "xStream: half-space chains on StreamHash projections",
    ),
    (
        "hst",
        "hstree:OnlineHST",
        "hstree:HSTParams",
        "Half-Space Trees: mass profiles over reference/latest windows",
    ),
)


def _register_online(register: Register) -> None:
    for name, factory, params, summary in _ONLINE_DETECTORS:
        register(
            name,
            f"{_ONLINE}.{factory}",
            summary=f"{summary} (online, exact test-then-train, numpy)",
            params=f"{_ONLINE}.{params}",
            tags=("online", "streaming", "fast"),
        )


@hookimpl
def register_storage(register: Register) -> None:
    register(
        "file",
        "adcore.stores.sqlite:open_store",
        summary="Embedded model store: SQLite index + artifact files in a directory (file://DIR or a path)",
    )
    for scheme in ("postgresql", "postgres"):
        register(
            scheme,
            "adcore.stores.postgres:open_store",
            summary="PostgreSQL index + S3 artifacts: postgresql://USER@HOST/DB?artifacts=s3://BUCKET/PREFIX",
            needs=["psycopg", "boto3"],
            install="adcore[postgres]",
        )


@hookimpl
def register_monitors(register: Register) -> None:
    register(
        "log",
        "adcore.builtin.monitors:LogMonitor",
        summary="Writes each event as one JSON line to the 'adcore.events' logger (stderr by default)",
    )
    register(
        "jsonlog",
        "adcore.builtin.jsonlog_monitor:JsonLogMonitor",
        summary="Structured JSON log lines (ts, level, message, fields) on stderr or $ADCORE_JSONLOG_PATH",
    )
    register(
        "prometheus",
        "adcore.builtin.prometheus_monitor:PrometheusMonitor",
        summary="Prometheus metrics by algorithm ($ADCORE_PROMETHEUS_PORT or a textfile; serve: /metrics)",
        needs=["prometheus-client"],
    )
    register(
        "alertmanager",
        "adcore.builtin.alerts.alertmanager:AlertmanagerMonitor",
        summary="Anomaly and drift alerts to Alertmanager's v2 API ($ADCORE_ALERTMANAGER_URL), grouped",
    )
    register(
        "webhook",
        "adcore.builtin.alerts.webhook:WebhookMonitor",
        summary="Anomaly and drift alerts as HMAC-signed JSON to $ADCORE_WEBHOOK_URL, grouped",
    )


@hookimpl
def register_messaging(register: Register) -> None:
    register(
        "stdio",
        "adcore.builtin.messaging:open_stdio",
        kind="source+sink",
        summary="JSON lines on stdin (source) and stdout (sink); the default stream endpoints",
    )
    register(
        "file",
        "adcore.builtin.messaging:open_file",
        kind="source+sink",
        summary="JSON lines in a local file: file://path (source reads, sink appends)",
    )


@hookimpl
def register_executors(register: Register) -> None:
    register(
        "local",
        "adcore.services.executors:LocalExecutor",
        summary="one process, one local file, read and scored in chunks (the default)",
    )
