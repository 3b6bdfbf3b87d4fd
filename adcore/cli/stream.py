"""``adcore stream``: score JSON records as they arrive, with drift detection and retraining.

Thin: it validates every option and opens every endpoint (raising ``adcore.errors`` types,
so mistakes exit 2 with one line *before* the first record is read), then hands over to
:class:`adcore.streaming.StreamingService`. SIGTERM finishes and flushes the current
batch, then exits 0, as EOF does.
"""

from __future__ import annotations

from typing import Any

import typer

from adcore.cli import options

_EPILOG = "Output: one JSON line per valid input record, in order. See docs/streaming.md."


def _parse_features(text: str | None) -> list[str] | None:
    return options.split_columns(text) if text is not None else None


def _setup_log_monitor() -> None:
    """Make the ``log`` monitor visible: its INFO lines go to stderr unless logging is configured."""
    import logging
    import sys

    logger = logging.getLogger("adcore.events")
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _build_model(
    algo: str | None,
    model_ref: str | None,
    store: str | None,
    params: list[str] | None,
    contamination: float | None,
    threshold: str | None,
    seed: int | None,
    save_retrained: str | None,
) -> Any:
    from adcore.errors import ParameterError
    from adcore.streaming import StreamModel

    if model_ref is not None:
        given = [
            name
            for name, value in (
                ("--algo", algo),
                ("--param", params),
                ("--contamination", contamination),
                ("--threshold", threshold),
                ("--seed", seed),
            )
            if value
        ]
        if given:
            raise ParameterError(
                f"{', '.join(given)} cannot be combined with --model (the model brings its own)"
            )
        return StreamModel.from_registry(model_ref, store=store, save_as=save_retrained)
    from adcore.cli.run import build_detector

    detector = build_detector(algo or "core:hbos", params, contamination, threshold, seed)
    return StreamModel.from_algorithm(detector, save_as=save_retrained, store=store)


def register(app: typer.Typer) -> None:
    @app.command("stream", epilog=_EPILOG)
    def stream_cmd(
        algo: str = typer.Option(
            None, "--algo", "-a", help="Detector fitted by the stream (default core:hbos)."
        ),
        model_ref: str = typer.Option(
            None, "--model", "-m", help="Start from a stored model: NAME or NAME@VERSION (never overwritten)."
        ),
        store: str = typer.Option(
            None, "--store", help="Model store URL (default: $ADCORE_STORE or embedded)."
        ),
        source: str = typer.Option("-", "--source", help="Input: - (stdin), file://PATH, or a plugin's URL."),
        sink: str = typer.Option(
            "-", "--sink", help="Output: - (stdout), file://PATH (appends), or a plugin's URL."
        ),
        features: str = typer.Option(
            None,
            "--features",
            help="Comma-separated feature names (default: the model's, else the first "
            "valid record's numeric fields except 'id').",
        ),
        keep_features: bool = typer.Option(
            False, "--keep-features", help="Copy feature values to the output too."
        ),
        window: int = typer.Option(1000, "--window", help="Records in the training window."),
        window_type: str = typer.Option("sliding", "--window-type", help="sliding | tumbling"),
        warmup: int = typer.Option(
            None,
            "--warmup",
            help="Records before the first fit (default: --window); emitted with warmup: true.",
        ),
        retrain: str = typer.Option(
            None, "--retrain", help="never | every:N | on-drift (default: every:WINDOW; never with --model)."
        ),
        drift: str = typer.Option("none", "--drift", help="none | ks | psi | adwin | page-hinkley"),
        drift_on: str = typer.Option("scores", "--drift-on", help="scores | features (ks and psi only)"),
        drift_param: list[str] = typer.Option(
            None, "--drift-param", help="Drift detector parameter KEY=VALUE (repeatable), e.g. window=500."
        ),
        save_retrained: str = typer.Option(
            None, "--save-retrained", help="Store each (re)fitted model as the next version of NAME."
        ),
        batch_size: int = typer.Option(1000, "--batch-size", help="Most records scored in one micro-batch."),
        max_delay_ms: float = typer.Option(
            200.0, "--max-delay-ms", help="Flush a partial batch once its oldest record waited this long."
        ),
        monitor: list[str] = typer.Option(
            None, "--monitor", help="Monitor receiving events, e.g. log (repeatable)."
        ),
        events: str = typer.Option(None, "--events", help="Sink URL receiving events as JSON lines."),
        dead_letter: str = typer.Option(
            None, "--dead-letter", help="Sink URL for malformed lines (default: one line each on stderr)."
        ),
        param: list[str] = options.PARAM,
        contamination: float = typer.Option(
            None, "--contamination", "-c", help="Expected share of anomalies, in (0, 0.5] (default 0.1)."
        ),
        threshold: str = typer.Option(
            None, "--threshold", help="contamination | mad[:k] | iqr[:k] | zscore[:k] | fixed:VALUE"
        ),
        seed: int = options.SEED,
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary line on stderr at the end."),
    ) -> None:
        """Score a stream of JSON records (objects or arrays), one output line per valid record.

        Micro-batches keep it fast; --max-delay-ms bounds how long a record waits. Malformed
        lines are reported and skipped. SIGTERM or EOF: the current batch is finished and
        flushed, then the command exits 0.
        """
        import signal
        import sys

        from adcore.events import EventBus, load_monitors, load_subscribers
        from adcore.messaging import open_sink, open_source
        from adcore.streaming import StreamConfig, StreamingService
        from adcore.streaming.config import parse_drift_params

        def report(message: str) -> None:
            sys.stderr.write(message + "\n")
            sys.stderr.flush()

        config = StreamConfig(
            window=window,
            window_type=window_type,
            warmup=warmup,
            retrain=retrain,
            drift=drift,
            drift_on=drift_on,
            drift_params=parse_drift_params(drift_param),
            batch_size=batch_size,
            max_delay_ms=max_delay_ms,
            features=_parse_features(features),
            keep_features=keep_features,
            save_retrained=save_retrained,
            from_model=model_ref is not None,
        ).validated()
        model = _build_model(algo, model_ref, store, param, contamination, threshold, seed, save_retrained)
        opened: list[Any] = []
        try:
            monitors = load_monitors(monitor or [])
            if any(name.split(":")[-1] == "log" for name in monitor or []):
                _setup_log_monitor()
            event_sinks = [open_sink(events)] if events else []
            opened += event_sinks
            bus = EventBus(
                monitors=monitors,
                sinks=event_sinks,
                subscribers=load_subscribers(on_error=report),
                on_error=report,
            )
            letters = open_sink(dead_letter) if dead_letter else None
            if letters is not None:
                opened.append(letters)
            out = open_sink(sink)
            opened.append(out)
            src = open_source(source)
            opened.append(src)
            service = StreamingService(
                src, out, model, config, events=bus, dead_letter=letters, report=report
            )
        except BaseException:
            for endpoint in reversed(opened):
                endpoint.close()
            raise
        installed, previous = False, None
        try:
            previous = signal.signal(signal.SIGTERM, lambda *_: service.stop())
            installed = True
        except ValueError:  # not the main thread (embedded): no signal handling
            pass
        try:
            stats = service.run()
        finally:
            if installed:
                signal.signal(signal.SIGTERM, previous)
            service.close()
        if not quiet:
            report(
                f"stream: {stats.records} records ({stats.warmup} warm-up), {stats.malformed} malformed, "
                f"{stats.anomalies} anomalies, {stats.drifts} drifts, {stats.retrains} fits "
                f"in {stats.seconds:.2f}s"
            )
