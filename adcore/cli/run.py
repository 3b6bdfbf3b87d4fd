"""``adcore run``: fit a detector on a file and write one score and label per row."""

from __future__ import annotations

from typing import Any

import typer

from adcore.cli import options
from adcore.cli.console import print_json
from adcore.cli.output import OutputFormat
from adcore.cli.text import help_paragraphs, plural


def build_detector(
    algo: str,
    params: list[str] | None,
    contamination: float | None,
    threshold: str | None,
    seed: int | None,
    ensemble: dict[str, Any] | None = None,
) -> Any:
    """The CLI's options, through the one detector spec every entry point shares.

    ``algo`` may list several detectors (``iforest,ecod``): an ensemble, configured by
    ``ensemble`` (combine, normalize, jobs) and ``--param MEMBER.KEY=VALUE``. A seed is
    drawn when ``--seed`` is not given, and the summary reports it.
    """
    from adcore.services.spec import detector_spec

    options = {k: v for k, v in (ensemble or {}).items() if k in ("combine", "normalize", "jobs")}
    spec = detector_spec(
        algo,
        list(params or []),
        contamination=contamination,
        threshold=threshold,
        seed=seed,
        draw_seed=True,
        **options,
    )
    return spec.build()


def print_summary(result: Any, output: str | None, *, top: int = 5) -> None:
    """A short human summary on stderr: counts, threshold, timing, seed, the most anomalous rows.

    The threshold and the scores share one precision (:class:`NumberFormat`), so a threshold of
    zero never sits beside a score of ``2.9922e-17`` as if they differed.
    """
    from adcore.cli.summaries import anomalous_rows, fit_time, print_lines, seed_line, seed_used, top_table
    from adcore.cli.text import NumberFormat

    anomalies = [a.to_dict() for a in result.top_anomalies(top)]
    summary = result.summary()
    number = NumberFormat.for_values([result.threshold, summary["score_min"], summary["score_max"]])
    print_lines(
        [
            f"[bold]{result.algorithm}[/]: {anomalous_rows(result.n_anomalies, result.n_samples)}, "
            f"threshold {number.exact(result.threshold)}, {fit_time(result.metadata, result.algorithm)}",
            _ensemble_line(result.metadata.get("ensemble")),
            seed_line(seed_used(result.metadata, result.params)),
            top_table(anomalies, number) if anomalies else None,
            f"scores written to {output}" if output and output != "-" else None,
        ]
    )


def _ensemble_line(ensemble: dict[str, Any] | None) -> str | None:
    """``ensemble consensus of pyod:iforest (0.52), core:hbos (0.48)``."""
    if not ensemble:
        return None
    weights = ensemble.get("weights") or [None] * len(ensemble["members"])
    parts = [
        f"{m} ({w:.2f})" if w is not None else m for m, w in zip(ensemble["members"], weights, strict=True)
    ]
    return f"ensemble {ensemble['combine']} of {', '.join(parts)}"


def print_choice(ensemble: dict[str, Any] | None, algo: str) -> None:
    """``--explain-choice``: the reasons ``auto`` recorded (``choice.reasons``), one per line."""
    from adcore.cli.summaries import print_lines

    choice = (ensemble or {}).get("choice")
    if not choice:
        print_lines([f"no choice to explain: --algo {algo} names its detectors itself"])
        return
    print_lines([f"why: {reason}" for reason in choice.get("reasons", [])])


def register(app: typer.Typer) -> None:
    @app.command("run")
    @help_paragraphs
    def run_cmd(
        algo: str | None = typer.Option(
            None,
            "--algo",
            "-a",
            help="Detector name (adcore algos), or several for an ensemble: a,b,c. Default: auto, "
            "a label-free choice of detectors (see --explain-choice); ts:auto with --time.",
        ),
        input_path: str = options.INPUT,
        output: str = options.OUTPUT,
        fmt: OutputFormat = options.FORMAT,
        contamination: float = options.CONTAMINATION,
        threshold: str = options.THRESHOLD,
        param: list[str] = options.PARAM,
        seed: int = options.SEED,
        columns: str = options.COLUMNS,
        no_header: bool = options.NO_HEADER,
        nan: options.NanPolicy = options.NAN,
        as_json: bool = options.JSON_INSTEAD_OF_ROWS,
        combine: str = options.COMBINE,
        normalize: str = options.NORMALIZE,
        jobs: int | None = options.JOBS,
        labels: str = options.LABELS,
        output_p_values: bool = options.OUTPUT_P_VALUES,
        explain_choice: bool = typer.Option(
            False,
            "--explain-choice",
            help="Print on stderr why the detector chose its members and weights (--algo auto).",
        ),
        time_column: str | None = options.TIME,
        series_column: str | None = options.SERIES,
    ) -> None:
        """Fit a detector (or an ensemble: --algo a,b,c) on a file and score every row of it.

        One row per input row, in order: any pass-through columns, 'score' (higher = more
        anomalous; empty for a row --nan drop removed) and 'label' (1 = anomaly, -1 = dropped);
        with --output-p-values, 'p_value' (conformal: small = anomalous; the fit then also
        scores 5 out-of-fold refits to calibrate it).

        The rows go to stdout (csv, or --format), or to --output FILE. The summary goes to
        stderr; --json prints it on stdout instead of the rows (add --output to keep them).
        """
        from adcore.cli.output import reader_may_leave, resolve_output
        from adcore.cli.progress import status
        from adcore.errors import ParameterError
        from adcore.services.detect import fit_detect

        algo = options.algo_or_default(algo, time_column, series_column)
        target = resolve_output(output, fmt, as_json, input_path=input_path)
        if time_column or series_column or algo.startswith("ts:"):
            _run_timeseries(
                algo, input_path, target, time_column, series_column, columns, param, threshold, as_json
            )
            return
        if combine == "stack" and not labels:
            raise ParameterError("--combine stack needs --labels COLUMN (a few rows labelled 1 or 0)")
        if labels and "," not in algo:
            raise ParameterError(
                "--labels trains a stacking ensemble: name several detectors, e.g. iforest,ecod"
            )
        ensemble = {"combine": "stack" if labels else combine, "normalize": normalize, "jobs": jobs}
        detector = build_detector(algo, param, contamination, threshold, seed, ensemble)
        from adcore.domain.conformal import refuse_fdr_in_sample

        refuse_fdr_in_sample(detector.threshold, "adcore run")
        with status(f"reading {input_path}") as shown:
            dataset, y = options.read_input(input_path, columns, no_header, nan.value, labels)
            shown.update(f"fitting {algo} on {plural(dataset.n_samples, 'row')}")
            result = fit_detect(detector, dataset, y=y, calibrate=output_p_values or None)
            if target.path is not None:
                shown.update("writing the scores")
                _write_rows(target, dataset, result, output_p_values)
        if target.stream is not None:  # after the spinner: rows on a terminal must not mix with it
            with reader_may_leave():
                _write_rows(target, dataset, result, output_p_values)
        if as_json:
            summary = result.summary()
            summary["output"] = target.name
            summary["top_anomalies"] = [a.to_dict() for a in result.top_anomalies(10)]
            print_json(summary)
        else:
            print_summary(result, target.name)
        if explain_choice:
            print_choice(result.metadata.get("ensemble"), algo)


def _write_rows(target: Any, dataset: Any, result: Any, p_values: bool = False) -> None:
    """One output row per input row: rows that --nan drop removed get no score and label -1
    (and no p-value)."""
    import numpy as np

    from adcore.data import write_scores

    if not target.writes_rows:
        return
    write_scores(
        target.path or "<stdout>",
        dataset.expand(result.scores, np.nan),
        dataset.expand(result.labels, -1),
        passthrough=dataset.passthrough,
        extra={"p_value": dataset.expand(result.p_values, np.nan)} if p_values else None,
        fmt=target.fmt,
        stream=target.stream,
    )


def _run_timeseries(
    algo: str,
    input_path: str,
    target: Any,
    time_column: str | None,
    series_column: str | None,
    columns: str | None,
    param: list[str] | None,
    threshold: str | None,
    as_json: bool = False,
) -> None:
    """``--time``: one causal time-series model per series (``adcore.timeseries.run``)."""
    from adcore.cli.summaries import print_lines
    from adcore.errors import ParameterError
    from adcore.timeseries.run import run_file

    if not time_column:
        raise ParameterError(f"--algo {algo} scores a time series: name its time column with --time")
    if not algo.startswith("ts:"):
        raise ParameterError(f"--time needs a time-series detector (--algo ts:auto), not {algo!r}")
    value_columns = options.split_columns(columns)
    if value_columns is not None and len(value_columns) != 1:
        raise ParameterError("--columns names the one value column of a time series")
    dataset, result = run_file(
        algo,
        input_path,
        time_column=time_column,
        series_column=series_column,
        value_column=value_columns[0] if value_columns else None,
        params=param,
        threshold=threshold,
    )
    write_series_rows(target, dataset, result)
    if as_json:
        print_json({**result.summary(), "output": target.name})
    else:
        print_lines(result.summary_lines() + ([f"scores written to {target.name}"] if target.path else []))


def write_series_rows(target: Any, dataset: Any, result: Any) -> None:
    """A time-series run's rows (pass-through columns, the value, score, label) to ``target``:
    what ``adcore run --time`` and ``adcore score`` of a time-series model both write."""
    if not target.writes_rows:
        return
    from adcore.cli.output import reader_may_leave
    from adcore.data import write_scores

    passthrough = dict(dataset.passthrough)
    passthrough[dataset.feature_names[0]] = dataset.X[:, 0].tolist()

    def write() -> None:
        write_scores(
            target.path or "<stdout>",
            result.scores,
            result.labels,
            passthrough=passthrough,
            fmt=target.fmt,
            stream=target.stream,
        )

    if target.stream is not None:
        with reader_may_leave():
            write()
    else:
        write()
