"""``adcore stream``: score JSON records as they arrive, with drift detection and retraining.

Thin: it parses the options and hands them to :func:`adcore.services.stream.open_stream`,
which checks every option and opens every endpoint (raising ``adcore.errors`` types, so
mistakes exit 2 with one line *before* the first record is read); then it runs the stream,
with SIGTERM finishing and flushing the current batch (exit 0, as at EOF), and prints the
summary line.
"""

from __future__ import annotations

from typing import Any

import typer

from adcore.cli import options
from adcore.cli.text import help_paragraphs, plural
from adcore.errors import ParameterError
from adcore.services.streaming.config import DEFAULT_STREAM_ALGORITHM

_EPILOG = "Output: one JSON line per valid input record, in order. See docs/streaming.md."


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


def _silence_stdout() -> None:
    """Point stdout at the null device after a broken pipe.

    What is still buffered for the reader that left would otherwise fail again when the
    interpreter flushes stdout at exit, turning the conventional quiet exit into exit 1.
    """
    import contextlib
    import os
    import sys

    with contextlib.suppress(AttributeError, OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def summary_line(stats: Any, seed: int | None) -> str:
    """``stream: 300 records (100 warm-up), 1 malformed, 4 anomalies, 0 drifts, 1 fit in 0.12s, seed 7``."""
    parts = [
        f"stream: {plural(stats.records, 'record')} ({stats.warmup} warm-up)",
        f"{stats.malformed} malformed",
    ]
    if stats.rejected:
        parts.append(f"{stats.rejected} rejected by the detector")
    parts += [plural(stats.anomalies, "anomaly", "anomalies"), plural(stats.drifts, "drift")]
    fits = plural(stats.retrains, "fit")
    if stats.refit_failures:
        fits += f" ({plural(stats.refit_failures, 'failed refit')})"
    parts.append(f"{fits} in {stats.seconds:.2f}s")
    if seed is not None:
        parts.append(f"seed {seed}")
    return ", ".join(parts)


def register(app: typer.Typer) -> None:
    @app.command("stream", epilog=_EPILOG)
    @help_paragraphs
    def stream_cmd(
        algo: str = typer.Option(
            None, "--algo", "-a", help=f"Detector fitted by the stream (default {DEFAULT_STREAM_ALGORITHM})."
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
            help="Records before the first score (default: sized to the detector, e.g. 50 for core:hbos; "
            "an online one's min_records - 1); emitted with warmup: true.",
        ),
        retrain: str = typer.Option(
            None,
            "--retrain",
            help="never | every:N | on-drift | learn (default: learn for an online detector, else "
            "every:WINDOW; never with --model).",
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
        max_record_bytes: int = typer.Option(
            None,
            "--max-record-bytes",
            help="Longest record in bytes (default 1048576); a longer one is dead-lettered, not buffered.",
        ),
        monitor: list[str] = typer.Option(
            None, "--monitor", help="Monitor receiving events, e.g. log (repeatable)."
        ),
        events: str = typer.Option(None, "--events", help="Sink URL receiving events as JSON lines."),
        dead_letter: str = typer.Option(
            None,
            "--dead-letter",
            help="Sink URL for malformed lines and records the detector rejects "
            "(default: one line each on stderr).",
        ),
        param: list[str] = options.PARAM,
        contamination: float = typer.Option(
            None, "--contamination", "-c", help="Expected share of anomalies, in (0, 0.5] (default 0.1)."
        ),
        threshold: str = typer.Option(
            None,
            "--threshold",
            help="contamination | mad[:k] | iqr[:k] | zscore[:k] | fixed:VALUE | fdr:Q (Benjamini-Hochberg "
            "on p-values, within each scored segment of a batch)",
        ),
        output_p_values: bool = typer.Option(
            False,
            "--output-p-values",
            help="Add p_value to each output line: conformal, against the window model's out-of-fold "
            "calibration scores, or an online detector's recent scores.",
        ),
        min_anomalies: int = typer.Option(
            1,
            "--min-anomalies",
            help="Alert (anomaly.detected) only when K of the last --within N "
            "records of a key are anomalous; labels are unchanged.",
        ),
        within: int = typer.Option(1, "--within", help="N, the records --min-anomalies counts over."),
        suppress: int = typer.Option(
            0,
            "--suppress",
            help="After an alert, hold back the key's alerts for this many records (then send one for them).",
        ),
        alert_key: str = typer.Option(
            None,
            "--alert-key",
            help="Record field whose values are separate keys for the alert rule "
            "(default: the whole stream).",
        ),
        series: str = typer.Option(
            None,
            "--series",
            help="Record field naming each record's series: one time-series detector per series "
            "(needs --algo ts:NAME or a stored time-series --model; see 'Many series' in docs/streaming.md).",
        ),
        time_field: str = typer.Option(
            None,
            "--time",
            help="Record field holding the timestamp (ISO 8601 or epoch seconds), with --series.",
        ),
        value_field: str = typer.Option(
            None,
            "--value",
            help="Record field holding the value, with --algo ts:NAME (default: value, or the model's).",
        ),
        max_series: int = typer.Option(
            None, "--max-series", help="Most live series; beyond it the least recently seen is dropped."
        ),
        seed: int = options.SEED,
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary line on stderr at the end."),
    ) -> None:
        """Score a stream of JSON records (objects or arrays), one output line per valid record.

        Micro-batches keep it fast; --max-delay-ms bounds how long a record waits. Malformed
        lines, and records the detector refuses, are reported and skipped; a refit that fails
        keeps the previous model. SIGTERM or EOF: the current batch is finished and flushed,
        then the command exits 0.
        """
        import sys

        from adcore.services.stream import open_stream

        def report(message: str) -> None:
            sys.stderr.write(message + "\n")
            sys.stderr.flush()

        if any(name.split(":")[-1] == "log" for name in monitor or []):
            _setup_log_monitor()
        ts_model = None
        if model_ref is not None and not algo:  # a stored time-series model brings --algo ts:NAME
            from adcore.cli.fit_score import _timeseries_model

            ts_model = _timeseries_model(model_ref, store)
        if ts_model is not None or series is not None or (algo or "").startswith("ts:"):
            _refuse_for_series(
                algo or (ts_model.algorithm if ts_model is not None else None),
                model=model_ref if ts_model is None else None,
                features=features,
                window=window != 1000,
                window_type=window_type != "sliding",
                drift_on=drift_on != "scores",  # a series' drift is watched on its raw values
                save_retrained=save_retrained,
                contamination=contamination,
                output_p_values=output_p_values,
                alert_key=alert_key,
                seed=seed,
            )
            _run_series_stream(
                report,
                quiet,
                source,
                sink,
                algo=algo,
                params=param or None,
                series=series,
                time_field=time_field,
                value=value_field,
                model=ts_model,
                drift=drift,
                drift_params=drift_param or None,
                retrain=retrain,
                warmup=warmup,
                threshold=threshold,
                max_series=max_series,
                keep_features=keep_features,
                batch_size=batch_size,
                max_delay_ms=max_delay_ms,
                max_record_bytes=max_record_bytes,
                min_anomalies=min_anomalies,
                within=within,
                suppress=suppress,
                monitors=monitor or (),
                events=events,
                dead_letter=dead_letter,
            )
            return
        if time_field is not None or max_series is not None or value_field is not None:
            raise ParameterError("--time, --value and --max-series need --algo ts:NAME")
        stream = open_stream(
            source,
            sink,
            algo=algo,
            model=model_ref,
            store=store,
            params=param or None,
            contamination=contamination,
            threshold=threshold,
            seed=seed,
            features=options.split_columns(features) if features is not None else None,
            keep_features=keep_features,
            window=window,
            window_type=window_type,
            warmup=warmup,
            retrain=retrain,
            drift=drift,
            drift_on=drift_on,
            drift_params=drift_param or None,
            save_retrained=save_retrained,
            batch_size=batch_size,
            max_delay_ms=max_delay_ms,
            max_record_bytes=max_record_bytes,  # None: open_stream's default
            p_values=output_p_values,
            min_anomalies=min_anomalies,
            within=within,
            suppress=suppress,
            alert_key=alert_key,
            monitors=monitor or (),
            events=events,
            dead_letter=dead_letter,
            report=report,
        )
        try:
            with stream:
                stats = stream.run(stop_on_sigterm=True)
        except BrokenPipeError:  # the reader went away (| head -1): a quiet exit 0, as cli.main gives
            _silence_stdout()  # (typer would turn the error into exit 1)
            raise typer.Exit(0) from None
        if not quiet:
            report(summary_line(stats, stream.seed))


def _refuse_for_series(algo: str | None, **given: Any) -> None:
    """Options of the tabular stream that a many-series stream has no use for: one-line errors."""
    if not (algo or "").startswith("ts:"):
        raise ParameterError(
            "--series needs a time-series detector (--algo ts:NAME, e.g. ts:auto), "
            f"not {algo or 'the default'}"
        )
    used = [name for name, value in given.items() if value not in (None, False, [], ())]
    if used:
        flags = ", ".join("--" + name.replace("_", "-") for name in used)
        raise ParameterError(f"{flags} cannot be combined with --algo {algo} (a stream of series)")


def _run_series_stream(report: Any, quiet: bool, source: str, sink: str, **options_: Any) -> None:
    """``adcore stream --algo ts:NAME [--series FIELD]``: adcore.timeseries.stream, then its summary."""
    from adcore.timeseries.stream import open_series_stream
    from adcore.timeseries.stream import summary_line as series_summary

    stream = open_series_stream(source, sink, report=report, **options_)
    try:
        with stream:
            stats = stream.run(stop_on_sigterm=True)
    except BrokenPipeError:
        _silence_stdout()
        raise typer.Exit(0) from None
    if not quiet:
        report(series_summary(stats))
