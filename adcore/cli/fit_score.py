"""``adcore fit`` (train and store a model version) and ``adcore score`` (score with a stored one)."""

from __future__ import annotations

from enum import Enum
from typing import Any

import typer

from adcore.cli import options
from adcore.cli.console import print_json
from adcore.cli.output import OutputFormat
from adcore.cli.text import help_paragraphs, plural

STORE = typer.Option(
    None,
    "--store",
    help="Model store: a directory, or postgresql://USER@HOST/DB?artifacts=s3://BUCKET/PREFIX "
    "(default: $ADCORE_STORE, else $ADCORE_HOME/models).",
)


class ScoreNan(str, Enum):
    error = "error"
    drop = "drop"


def register(app: typer.Typer) -> None:
    @app.command("fit")
    @help_paragraphs
    def fit_cmd(
        algo: str | None = typer.Option(
            None,
            "--algo",
            "-a",
            help="Detector name, e.g. core:hbos (adcore algos). Default: auto (ts:auto with --time).",
        ),
        input_path: str = options.INPUT,
        model: str = typer.Option(..., "--model", "-m", help="Model name; each fit stores the next version."),
        store: str = STORE,
        contamination: float = options.CONTAMINATION,
        threshold: str = options.THRESHOLD,
        param: list[str] = options.PARAM,
        seed: int = options.SEED,
        columns: str = options.COLUMNS,
        no_header: bool = options.NO_HEADER,
        nan: options.NanPolicy = options.NAN,
        as_json: bool = options.JSON,
        combine: str = options.COMBINE,
        normalize: str = options.NORMALIZE,
        jobs: int | None = options.JOBS,
        sample: int | None = typer.Option(
            None,
            "--sample",
            help="Fit on this many rows drawn uniformly across the input (seeded by --seed) instead of all.",
        ),
        executor: str = options.EXECUTOR,
        storage_option: list[str] = options.STORAGE_OPTION,
        on_bad_file: str = options.ON_BAD_FILE,
        mlflow: bool = typer.Option(
            False, "--mlflow", help="Log the fit as an MLflow run (pip install adcore-mlflow; MLFLOW_* vars)."
        ),
        time_column: str | None = options.TIME,
        series_column: str | None = options.SERIES,
    ) -> None:
        """Fit a detector on a file and store it as a new model version; prints NAME@VERSION.

        Takes the same data, threshold and parameter options as 'run'; the same data and
        seed give the same scores. Score new data later with 'adcore score --model NAME'.

        With --time (and --series), a time-series detector (--algo ts:auto...) is fitted per
        series on its whole history, its state primed to the history's end, and the
        detectors are stored as one version: 'adcore score' and 'adcore stream --model NAME'
        continue each series from there.
        """
        import contextlib

        algo = options.algo_or_default(algo, time_column, series_column)
        if time_column or series_column or algo.startswith("ts:"):
            _fit_timeseries(
                algo,
                input_path,
                model,
                store,
                time_column,
                series_column,
                columns,
                param,
                threshold,
                as_json,
                contamination=contamination,
                sample=sample,
                mlflow=mlflow,
                seed=seed,
            )
            return

        from adcore.cli.progress import job_progress, status
        from adcore.services.executors import (
            FitJob,
            check_bad_file_policy,
            check_sample,
            default_executor,
            open_executor,
        )
        from adcore.services.registry import check_model_name, open_store, store_url
        from adcore.services.spec import detector_spec

        check_model_name(model)
        check_sample(sample)
        check_bad_file_policy(on_bad_file)
        storage = options.split_pairs(storage_option, "--storage-option")
        executor = executor or default_executor()
        spec = detector_spec(
            algo,
            list(param or []),
            contamination=contamination,
            threshold=threshold,
            seed=seed,
            draw_seed=True,
            combine=combine,
            normalize=normalize,
            jobs=jobs,
        )
        spec.build()  # parameter errors before any data is read
        local = _is_local(executor)
        job = FitJob(
            spec=spec,
            input=input_path,
            model=model,
            store=store if local else store_url(store),
            sample=sample,
            columns=options.split_columns(columns),
            header=options.header_flag(no_header),
            nan_policy=nan.value,
            on_bad_file=on_bad_file,
            storage_options=storage,
        )
        with contextlib.closing(open_store(store)) as opened:  # a bad store URL fails before a long fit
            url = opened.url
        with contextlib.closing(open_executor(executor)) as runner:
            if local:
                with status(f"fitting {algo}"):
                    outcome = runner.fit(job)
            else:
                with job_progress(f"reading a sample for {algo}") as progress:
                    outcome = runner.fit(job, progress)
        record = outcome.record
        from adcore.domain.events import ModelSaved
        from adcore.services.events import publish_to_subscribers

        saved = ModelSaved.from_record(record, stream="cli:fit", store=_redacted(url))
        publish_to_subscribers([saved], on_error=lambda message: typer.echo(message, err=True))
        if mlflow:
            from adcore.services.tracking import track

            track([saved], "mlflow", done=f"stored {record.ref}")
        if as_json:
            print_json({**record.to_dict(), "store": _redacted(url), "job": outcome.summary})
            return
        typer.echo(record.ref)
        _print_fit_summary(record, outcome.summary)

    @app.command("score")
    @help_paragraphs
    def score_cmd(
        model: str = typer.Option(..., "--model", "-m", help="NAME (latest version) or NAME@VERSION."),
        input_path: str = options.INPUT,
        output: str = options.OUTPUT,
        fmt: OutputFormat = options.FORMAT,
        chunk_size: int = typer.Option(
            100_000, "--chunk-size", min=1, help="Rows read and scored at a time (bounds memory)."
        ),
        store: str = STORE,
        columns: str = typer.Option(
            None, "--columns", help="Feature columns (default: those selected at fit); others pass through."
        ),
        no_header: bool = options.NO_HEADER,
        nan: ScoreNan = typer.Option(ScoreNan.error, "--nan", help="Missing values: error, or drop the row."),
        as_json: bool = options.JSON_INSTEAD_OF_ROWS,
        executor: str = options.EXECUTOR,
        storage_option: list[str] = options.STORAGE_OPTION,
        on_bad_file: str = options.ON_BAD_FILE,
        output_p_values: bool = options.OUTPUT_P_VALUES,
        time_column: str | None = typer.Option(
            None, "--time", help="Time-series model: the time column (default: the one named at fit)."
        ),
        series_column: str | None = typer.Option(
            None, "--series", help="Time-series model: the series column (default: the one named at fit)."
        ),
    ) -> None:
        """Score a file with a stored model (no refit), in chunks of --chunk-size rows.

        Labels use the threshold stored with the model (fdr:Q: Benjamini-Hochberg within each
        chunk). The input must have the training features (count, and names/order when known).
        --output-p-values needs a model fitted with --threshold fdr:Q (it keeps the calibration).

        The rows go to stdout (csv, or --format), or to --output FILE, one per input row. The
        summary goes to stderr; --json prints it on stdout instead of the rows (add --output
        to keep them).

        --executor dask (pip install adcore-dask) scores a directory, a glob or s3:// input on a
        Dask cluster and writes a directory of part files with each row's source and row number.

        A time-series model (adcore fit --algo ts:NAME --time ...) continues each series' stored
        state causally over the file's later records; a new series warms up on its first ones.
        """
        from adcore.services.executors import check_bad_file_policy, default_executor

        stored = _timeseries_model(model, store)
        if stored is not None:
            _score_timeseries(stored, input_path, output, fmt, as_json, time_column, series_column, columns)
            return
        if time_column or series_column:
            from adcore.errors import ParameterError

            raise ParameterError(f"--time and --series score a time-series model; {model} is a tabular one")

        executor = executor or default_executor()
        check_bad_file_policy(on_bad_file)
        storage = options.split_pairs(storage_option, "--storage-option")
        if _is_local(executor):
            payload = _score_locally(
                model,
                input_path,
                output,
                fmt,
                as_json,
                chunk_size,
                store,
                columns,
                no_header,
                nan,
                storage,
                output_p_values,
            )
        else:
            if output_p_values:
                from adcore.errors import ParameterError

                raise ParameterError("--output-p-values is written by the local executor only")
            payload = _score_with(
                executor,
                model,
                input_path,
                output,
                fmt,
                as_json,
                chunk_size,
                store,
                columns,
                no_header,
                nan,
                on_bad_file,
                storage,
            )
        if payload is None:  # the reader of stdout left early (| head): nothing more to say
            return
        if as_json:
            print_json(payload)
        else:
            _print_score_summary(payload)


def _is_local(executor: str) -> bool:
    from adcore.services.executors import LOCAL_EXECUTOR, executor_name

    return executor_name(executor) == LOCAL_EXECUTOR


def _score_locally(
    model: str,
    input_path: str,
    output: str | None,
    fmt: OutputFormat | None,
    as_json: bool,
    chunk_size: int,
    store: str | None,
    columns: str | None,
    no_header: bool,
    nan: ScoreNan,
    storage: dict[str, str],
    p_values: bool = False,
) -> dict[str, Any] | None:
    """The local executor: rows to --output or stdout, a bar of rows when they go to a file."""
    from adcore.cli.output import reader_may_leave, resolve_output
    from adcore.cli.progress import job_progress, known_row_count
    from adcore.services.executors import LocalExecutor, ScoreJob

    target = resolve_output(output, fmt, as_json, input_path=input_path)
    loaded = load_stored_model(model, store)
    job = ScoreJob(
        model=str(loaded.ref),
        input=input_path,
        output=target.path,
        store=store,
        chunk_size=chunk_size,
        columns=options.split_columns(columns),
        header=options.header_flag(no_header),
        nan_policy=nan.value,
        fmt=target.fmt,
        storage_options=storage,
        stream=target.stream,
        loaded_model=loaded,
        p_values=p_values,
    )
    payload = None
    with (
        reader_may_leave(),
        job_progress(
            f"scoring with {loaded.ref}",
            total_hint=known_row_count(input_path),
            enabled=not target.on_terminal,  # rows on the terminal: a bar would garble them
        ) as progress,
    ):
        payload = LocalExecutor().score(job, progress)
    if payload is not None:
        payload["output"] = target.name
    return payload


def _score_with(
    executor: str,
    model: str,
    input_path: str,
    output: str | None,
    fmt: OutputFormat | None,
    as_json: bool,
    chunk_size: int,
    store: str | None,
    columns: str | None,
    no_header: bool,
    nan: ScoreNan,
    on_bad_file: str,
    storage: dict[str, str],
) -> dict[str, Any]:
    """A plugin's executor: part files under the --output directory, a bar of partitions."""
    import contextlib

    from adcore.cli.progress import job_progress
    from adcore.errors import ParameterError
    from adcore.services.executors import ScoreJob, open_executor
    from adcore.services.registry import store_url

    if output in (None, "-") and not as_json:
        raise ParameterError(
            f"--executor {executor} writes a directory of part files: give --output DIR "
            "(or --json for the summary alone)"
        )
    loaded = load_stored_model(model, store)  # a missing or tampered model fails before any work
    job = ScoreJob(
        model=str(loaded.ref),  # NAME@VERSION: every worker scores with the version checked here
        input=input_path,
        output=output,
        store=store_url(store),
        chunk_size=chunk_size,
        columns=options.split_columns(columns),
        header=options.header_flag(no_header),
        nan_policy=nan.value,
        fmt=fmt.value if fmt is not None else None,
        on_bad_file=on_bad_file,
        storage_options=storage,
    )
    with (
        contextlib.closing(open_executor(executor)) as runner,
        job_progress(f"scoring with {loaded.ref}") as progress,
    ):
        payload = runner.score(job, progress)
    payload.setdefault("threshold", loaded.threshold)
    return payload


def existing_store(store: str | None, ref: str) -> Any:
    """The store to read ``ref`` from (a context manager closing it); reading never creates a store.

    A ``--store`` typed on the command line that does not exist is an error naming it. The
    configured store (ADCORE_STORE or the default) appears with the first fit: before that,
    ``ref`` is simply a model that is not there.
    """
    import contextlib

    from adcore.services.registry import (
        StoreNotFoundError,
        model_not_found,
        open_store,
        parse_model_ref,
        store_url,
    )

    name, version = parse_model_ref(ref)  # a bad reference is reported before the store is looked at
    try:
        opened = open_store(store, create=False)
    except StoreNotFoundError:
        if store:
            raise
        raise model_not_found(name, version, [], store_url(None)) from None
    return contextlib.closing(opened)


def load_stored_model(ref: str, store: str | None) -> Any:
    """Load ``ref`` from a store that must already exist (see :func:`existing_store`)."""
    from adcore.services.models import load_model

    with existing_store(store, ref) as opened:
        loaded = load_model(ref, opened)
    loaded.store = store  # the URL, as load_model(ref, url) records it, not the closed store
    return loaded


def _redacted(url: str) -> str:
    from adcore.services.registry import redact_url

    return redact_url(url)


def _print_fit_summary(record: Any, job: dict[str, Any] | None = None) -> None:
    """What was stored, its threshold in the precision of its training scores, and its seed;
    for a sample, how many rows it was drawn from (and where, on a cluster)."""
    from adcore.cli.summaries import print_lines, seed_line, seed_used
    from adcore.cli.text import NumberFormat

    quantiles = getattr(record, "score_quantiles", None) or {}
    number = NumberFormat.for_values([record.threshold, *quantiles.values()])
    seed = getattr(record, "seed", None)
    if seed is None:
        seed = seed_used({}, record.params)
    print_lines(
        [
            f"stored {record.ref}: {record.algorithm} on {plural(record.n_samples, 'row')} x "
            f"{plural(record.n_features, 'feature')}, threshold {number.exact(record.threshold)}, "
            f"{plural(record.metrics['n_anomalies'], 'training row')} anomalous",
            _sample_line(job or {}),
            seed_line(seed),
        ]
    )


def _sample_line(job: dict[str, Any]) -> str | None:
    """``fitted on a sample of 1,000 of 2,000,000 rows (12 partitions, 2 workers, 3.1 s)``."""
    from adcore.cli.summaries import seconds

    n_rows, n_sampled = job.get("n_rows"), job.get("n_sampled")
    local = job.get("executor") == "local"
    if n_rows is None or n_sampled is None or (n_sampled == n_rows and local):
        return None
    where = []
    if not local and job.get("partitions") is not None:
        where.append(plural(int(job["partitions"]), "partition"))
    if not local and job.get("workers") is not None:
        where.append(plural(int(job["workers"]), "worker"))
    if not local and job.get("seconds") is not None:
        where.append(seconds(float(job["seconds"])))
    skipped = job.get("skipped_files") or []
    shown = ", ".join(map(str, skipped[:3])) + (" ..." if len(skipped) > 3 else "")
    note = f"; skipped {plural(len(skipped), 'bad file')}: {shown}" if skipped else ""
    return (
        f"fitted on a sample of {n_sampled:,} of {int(n_rows):,} rows"
        f"{' (' + ', '.join(where) + ')' if where else ''}{note}"
    )


def _print_score_summary(payload: dict[str, Any]) -> None:
    """Counts, the stored threshold beside the scores in one precision, time, the top rows."""
    from adcore.cli.summaries import anomalous_rows, print_lines, seconds, top_table
    from adcore.cli.text import NumberFormat

    number = NumberFormat.for_values([payload["threshold"], payload["score_min"], payload["score_max"]])
    dropped = payload["n_rows"] - payload["n_scored"]
    dropped_note = f" ({plural(dropped, 'row')} dropped)" if dropped else ""
    top = payload["top_anomalies"][:5]
    print_lines(
        [
            f"[bold]{payload['model']}[/]: {anomalous_rows(payload['n_anomalies'], payload['n_rows'])}"
            f"{dropped_note}, "
            f"threshold {number.exact(payload['threshold'])}, {seconds(payload['seconds'])}",
            top_table(top, number) if top else None,
            f"scores written to {payload['output']}" if payload["output"] not in (None, "-") else None,
        ]
    )


# ------------------------------------------------------------------- time-series models


def _fit_timeseries(
    algo: str,
    input_path: str,
    model: str,
    store: str | None,
    time_column: str | None,
    series_column: str | None,
    columns: str | None,
    param: list[str] | None,
    threshold: str | None,
    as_json: bool,
    **tabular_only: Any,
) -> None:
    """``adcore fit --algo ts:NAME --time T [--series S]``: one detector per series, one version."""
    import contextlib

    from adcore.cli.summaries import print_lines
    from adcore.errors import ParameterError
    from adcore.services.registry import check_model_name, open_store
    from adcore.timeseries.models import fit_ts_model
    from adcore.timeseries.run import parse_params, parse_threshold, read_series_file

    check_model_name(model)
    if not time_column:
        raise ParameterError(f"--algo {algo} fits a time series: name its time column with --time")
    if not algo.startswith("ts:"):
        raise ParameterError(f"--time needs a time-series detector (--algo ts:auto), not {algo!r}")
    used = [k for k, v in tabular_only.items() if v not in (None, False)]
    if used:
        flags = ", ".join("--" + k for k in used)
        raise ParameterError(f"{flags} cannot be combined with --algo {algo} (a time-series model)")
    value_columns = options.split_columns(columns)
    if value_columns is not None and len(value_columns) != 1:
        raise ParameterError("--columns names the one value column of a time series")
    params = parse_params(param)
    if "warmup" in params:
        raise ParameterError(
            "--param warmup: a stored time-series model is fitted on each series' whole history"
        )
    cut = parse_threshold(threshold)
    from adcore.timeseries.detectors import build_ts_detector

    build_ts_detector(algo, **params)  # a bad name or parameter fails before the data is read
    with contextlib.closing(open_store(store)) as opened:  # a bad store fails before the fit
        dataset, times, series = read_series_file(
            input_path,
            time_column=time_column,
            series_column=series_column,
            value_column=value_columns[0] if value_columns else None,
        )
        fitted = fit_ts_model(
            algo,
            dataset.X[:, 0],
            times,
            series,
            time_column=time_column,
            series_column=series_column,
            value_column=dataset.feature_names[0],
            params=params,
            threshold=cut,
        )
        record = fitted.save(model, store=opened)
        url = opened.url
    if as_json:
        print_json({**record.to_dict(), "store": _redacted(url), "skipped_series": fitted.skipped})
        return
    typer.echo(record.ref)
    skipped = list(fitted.skipped.items())
    print_lines(
        [
            f"stored {record.ref}: {record.algorithm}, {plural(len(fitted.detectors), 'series', 'series')} "
            f"fitted on {plural(record.n_samples, 'record')} (state primed to each series' end, "
            f"{fitted.state_nbytes():,} bytes), threshold {record.threshold:g}",
            f"not stored ({len(skipped)}, they warm up on arrival): "
            + ", ".join(f"{k} ({why})" for k, why in skipped[:3])
            + (" ..." if len(skipped) > 3 else "")
            if skipped
            else None,
        ]
    )


def _timeseries_model(ref: str, store: str | None) -> Any:
    """The stored time-series model ``ref``, or ``None`` when ``ref`` is a tabular model."""
    from adcore.services.registry import parse_model_ref, verify_artifact
    from adcore.timeseries.models import TimeSeriesModel, is_ts_record

    name, version = parse_model_ref(ref)
    with existing_store(store, ref) as opened:
        record = opened.get(name, version)
        if not is_ts_record(record):
            return None
        data = verify_artifact(record, opened.read_artifact(record))
    return TimeSeriesModel.from_bytes(data, record=record)


def _score_timeseries(
    stored: Any,
    input_path: str,
    output: str | None,
    fmt: OutputFormat | None,
    as_json: bool,
    time_column: str | None,
    series_column: str | None,
    columns: str | None,
) -> None:
    """``adcore score --model TS_MODEL``: continue each series' state over a later file."""
    from adcore.cli.output import resolve_output
    from adcore.cli.run import write_series_rows
    from adcore.cli.summaries import print_lines
    from adcore.errors import ParameterError

    target = resolve_output(output, fmt, as_json, input_path=input_path)
    value_columns = options.split_columns(columns)
    if value_columns is not None and len(value_columns) != 1:
        raise ParameterError("--columns names the one value column of a time series")
    from adcore.timeseries.run import read_series_file

    dataset, times, series = read_series_file(
        input_path,
        time_column=time_column or stored.time_column,
        series_column=series_column or stored.series_column,
        value_column=value_columns[0] if value_columns else stored.value_column,
    )
    result = stored.score_table(dataset.X[:, 0], times, series)
    result.algorithm = f"{stored.ref} ({stored.algorithm})"
    write_series_rows(target, dataset, result)
    if as_json:
        print_json({**result.summary(), "model": stored.ref, "output": target.name})
    else:
        print_lines(result.summary_lines() + ([f"scores written to {target.name}"] if target.path else []))
