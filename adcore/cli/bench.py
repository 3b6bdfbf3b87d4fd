"""``adcore bench``: detectors (and their default ensemble) on labelled datasets, ADBench-style."""

from __future__ import annotations

import typer

from adcore.cli.console import print_json, stdout_console


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench_cmd(
        algo: str = typer.Option(
            ...,
            "--algo",
            "-a",
            help="Comma-separated detectors, e.g. iforest,ecod,knn (with --task timeseries also ts:auto...).",
        ),
        datasets: list[str] = typer.Option(
            ..., "--datasets", "-d", help="A folder of .npz (X, y) / .csv files, or files (repeatable)."
        ),
        ensemble: bool = typer.Option(
            False, "--ensemble", help="Also evaluate the default ensemble of --algo."
        ),
        output: str = typer.Option(None, "--output", "-o", help="Write every record: .json or .csv."),
        plot: str = typer.Option(None, "--plot", help="Write a PNG chart of ROC-AUC (needs matplotlib)."),
        label_column: str = typer.Option("label", "--label-column", help="Label column of CSV datasets."),
        seed: int = typer.Option(0, "--seed", help="random_state for every detector that takes one."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of tables."),
        mlflow: bool = typer.Option(
            False, "--mlflow", help="Log one MLflow run per detector and dataset (pip install adcore-mlflow)."
        ),
        task: str = typer.Option(
            "tabular",
            "--task",
            help="tabular (ADBench protocol) or timeseries (a NAB-layout folder, scored causally).",
        ),
        metric: str = typer.Option(
            "vus-pr,nab", "--metric", help="Time series: vus-pr and/or nab (NAB's three profiles)."
        ),
        window: int = typer.Option(16, "--window", help="Time series: sliding-window length, in records."),
    ) -> None:
        """Fit and score on all rows; report ROC-AUC, average precision, time and peak memory.

        With --task timeseries, each detector is fitted per series on its first 15% (NAB's
        probationary period) and scores every later record causally: a time-series detector
        (ts:auto, ts:discord...) by itself, a tabular one from the --window values up to the
        record; the report is NAB's score per category and profile and the mean VUS-PR.
        """
        from pathlib import Path

        from adcore.data import check_output_path
        from adcore.errors import DataError, ParameterError
        from adcore.services.bench import find_datasets, references, run_benchmark, summarise
        from adcore.services.spec import create_detector

        names = [n.strip() for n in algo.split(",")]
        if not all(names):  # "hbos,,mad" or "": a missing name is a typo, never silently skipped
            raise ParameterError(f"empty detector name in --algo {algo!r}: e.g. --algo hbos,iforest")
        if task not in ("tabular", "timeseries"):
            raise ParameterError(f"--task is tabular or timeseries, not {task!r}")
        for name in names:  # unknown names fail now, not after an hour of benchmarking
            if name.startswith("ts:"):
                from adcore.timeseries.detectors import build_ts_detector

                if task != "timeseries":
                    raise ParameterError(f"{name} is a time-series detector: add --task timeseries")
                build_ts_detector(name)
            else:
                create_detector(name)
        if task == "timeseries":
            if ensemble or plot or mlflow or len(datasets) != 1:
                raise ParameterError(
                    "--task timeseries takes one --datasets folder, without --ensemble, --plot or --mlflow"
                )
            _timeseries(names, datasets[0], metric, window, seed, output, as_json)
            return
        if ensemble and len(names) < 2:
            raise ParameterError("--ensemble needs at least two detectors in --algo")
        if output:
            suffix = Path(output).suffix.lower()
            if suffix not in (".json", ".csv"):
                raise DataError("bench output must end in .json or .csv", path=output)
            check_output_path(output, "json" if suffix == ".json" else "csv")
        if plot:
            if Path(plot).suffix.lower() != ".png":
                raise DataError("the plot is written as PNG: use a .png path", path=plot)
            _check_matplotlib()
        paths = find_datasets(datasets)
        records = _run_with_progress(names, paths, ensemble, seed, label_column, run_benchmark)
        summary = summarise(records)
        reference = references(records)
        if output:
            _write_records(output, records)
        if plot:
            _plot(plot, records, reference)
        if mlflow:
            from adcore.domain.events import BenchCompleted
            from adcore.services.tracking import track

            done = BenchCompleted(
                stream="cli:bench",
                records=[{**r.__dict__, "algorithm": r.detector} for r in records],
                summary=summary,
                artifacts=[str(Path(p).resolve()) for p in (output, plot) if p],
                seed=seed,
            )
            track([done], "mlflow", done="the benchmark ran")
        if as_json:
            print_json(
                {"summary": summary, "references": reference, "records": [r.__dict__ for r in records]}
            )
        else:
            _print_tables(records, summary, reference)

    def _check_matplotlib() -> None:
        from adcore.errors import MissingDependencyError

        try:
            import matplotlib  # noqa: F401
        except ModuleNotFoundError:
            raise MissingDependencyError("--plot needs matplotlib: pip install 'adcore[plot]'") from None


def _timeseries(
    names: list[str], root: str, metric: str, window: int, seed: int, output: str | None, as_json: bool
) -> None:
    """``--task timeseries``: run, then print tables or JSON and write ``--output`` (.json)."""
    from pathlib import Path

    from adcore.cli.progress import bar
    from adcore.data import check_output_path
    from adcore.errors import DataError
    from adcore.services.bench import parse_ts_metrics, run_timeseries_benchmark

    metrics = parse_ts_metrics(metric)
    if output:
        if Path(output).suffix.lower() != ".json":
            raise DataError("time-series bench output is written as JSON: use a .json path", path=output)
        check_output_path(output, "json")
    with bar("benchmark", len(names)) as shown:

        def progress(name: str) -> None:
            shown.describe(name)
            shown.advance()

        corpus, records = run_timeseries_benchmark(
            names, root, metrics=metrics, window=window, seed=seed, on_progress=progress
        )
    report = {
        "task": "timeseries",
        "datasets": str(root),
        "series": len(corpus.series),
        "window": window,
        "metrics": list(metrics),
        "detectors": {
            r.detector: {"seconds": r.seconds, "error": r.error}
            | (r.evaluation.as_dict() if r.evaluation is not None else {})
            for r in records
        },
    }
    if output:
        _write_json(output, report)
    if as_json:
        summary = {
            name: {k: v for k, v in entry.items() if k in ("seconds", "error", "categories", "mean_vus_pr")}
            | {"nab": {p: r["score"] for p, r in entry.get("nab", {}).items()}}
            for name, entry in report["detectors"].items()
        }
        print_json({"task": "timeseries", "series": len(corpus.series), "summary": summary})
        return
    _print_timeseries(records, sorted(corpus.categories()), metrics)


def _print_timeseries(records: list, categories: list[str], metrics: tuple[str, ...]) -> None:
    from rich.table import Table

    console = stdout_console()
    if "nab" in metrics:
        table = Table(title="NAB standard score by category", title_justify="left")
        table.add_column("detector")
        for category in categories:
            table.add_column(category, justify="right")
        for r in records:
            if r.evaluation is None:
                continue
            cells = [r.evaluation.categories[c]["standard"] for c in categories]
            table.add_row(r.detector, *("-" if v is None else f"{v:.1f}" for v in cells))
        console.print(table)
    summary = Table(title="summary", title_justify="left")
    summary.add_column("detector")
    columns = ["NAB standard", "NAB low FP", "NAB low FN"] if "nab" in metrics else []
    columns += ["mean VUS-PR"] if "vus-pr" in metrics else []
    for column in [*columns, "seconds"]:
        summary.add_column(column, justify="right")
    for r in records:
        if r.evaluation is None:
            summary.add_row(r.detector, *(["error"] * (len(columns) + 1)))
            continue
        row = []
        if "nab" in metrics:
            for profile in ("standard", "reward_low_FP_rate", "reward_low_FN_rate"):
                score = r.evaluation.nab[profile].score
                row.append("-" if score is None else f"{score:.1f}")
        if "vus-pr" in metrics:
            vus = r.evaluation.mean_vus_pr
            row.append("-" if vus is None else f"{vus:.3f}")
        summary.add_row(r.detector, *row, f"{r.seconds}")
    console.print(summary)
    for r in records:
        if r.error:
            console.print(f"[red]{r.detector}: {r.error}[/]")


def _write_json(path: str, payload: dict) -> None:
    """Write through a temporary file in the same folder: a crash never leaves half a report."""
    import json
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2)
    os.replace(tmp, path)


def _run_with_progress(names, paths, ensemble, seed, label_column, run_benchmark):  # type: ignore[no-untyped-def]
    """Run the benchmark under a bar of datasets x detectors (on a terminal only)."""
    from adcore.cli.progress import bar

    records = []
    with bar("benchmark", len(paths) * len(names)) as shown:
        for record in run_benchmark(
            names, paths, ensemble=ensemble, seed=seed, label_column=label_column, on_progress=shown.describe
        ):
            records.append(record)
            if not record.detector.startswith("ensemble("):  # combining scores is not a fit
                shown.advance()
    return records


def _write_records(path: str, records: list) -> None:
    import csv
    import json
    import os
    import tempfile

    rows = [dict(r.__dict__) for r in records]
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    with os.fdopen(fd, "w", newline="") as handle:
        if path.lower().endswith(".json"):
            json.dump(rows, handle, indent=2)
        else:
            fields = [k for k in rows[0] if k != "extra"] if rows else []
            writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    os.replace(tmp, path)


ORACLE_ROW = "oracle (hindsight)"


def _plot(path: str, records: list, reference: dict | None = None) -> None:
    """A heatmap of ROC-AUC, one row per detector, plus the oracle's row when there is one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    datasets = list(dict.fromkeys(r.dataset for r in records))
    detectors = list(dict.fromkeys(r.detector for r in records))
    if reference:
        best = reference["best_single"]
        detectors = [f"{d} (best single)" if d == best else d for d in detectors] + [ORACLE_ROW]
    grid = np.full((len(detectors), len(datasets)), np.nan)
    for r in records:
        if r.roc_auc is not None:
            label = (
                f"{r.detector} (best single)"
                if reference and r.detector == reference["best_single"]
                else r.detector
            )
            grid[detectors.index(label), datasets.index(r.dataset)] = r.roc_auc
    if reference:
        by_cell = {(r.dataset, r.detector): r.roc_auc for r in records}
        for ds, pick in reference["oracle_picks"].items():
            grid[-1, datasets.index(ds)] = by_cell[(ds, pick)]
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(datasets) + 3), 0.45 * len(detectors) + 2))
    image = ax.imshow(grid, vmin=0.5, vmax=1.0, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(datasets)), datasets, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(detectors)), detectors, fontsize=8)
    for i in range(len(detectors)):
        for j in range(len(datasets)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=6, color="w")
    fig.colorbar(image, ax=ax, label="ROC-AUC")
    ax.set_title("ROC-AUC (ADBench protocol: fit and score on all rows)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _print_tables(records: list, summary: list, reference: dict | None = None) -> None:
    from rich.table import Table

    console = stdout_console()
    datasets = list(dict.fromkeys(r.dataset for r in records))
    detectors = list(dict.fromkeys(r.detector for r in records))
    cell = {(r.dataset, r.detector): r for r in records}
    table = Table(title="ROC-AUC", title_justify="left")
    table.add_column("dataset")
    for name in detectors:
        table.add_column(name, justify="right")
    for ds in datasets:
        row = [ds]
        for name in detectors:
            r = cell.get((ds, name))
            row.append("-" if r is None else ("error" if r.error else f"{r.roc_auc:.4f}"))
        table.add_row(*row)
    console.print(table)
    means = Table(title="summary", title_justify="left")
    for column in ("detector", "datasets", "errors", "mean ROC-AUC", "mean AP", "fit s", "score s"):
        means.add_column(column, justify="right" if column != "detector" else "left")
    for s in summary:
        means.add_row(
            s["detector"],
            str(s["datasets"]),
            str(s["errors"]),
            f"{s['mean_roc_auc']}",
            f"{s['mean_average_precision']}",
            f"{s['total_fit_seconds']}",
            f"{s['total_score_seconds']}",
        )
    console.print(means)
    if reference:
        console.print(_reference_table(reference))
    for r in records:
        if r.error:
            console.print(f"[red]{r.dataset} · {r.detector}: {r.error}[/]")


def _reference_table(reference: dict) -> object:
    """Oracle, best single and every combination side by side (mean ROC-AUC and the gaps)."""
    from rich.table import Table

    table = Table(
        title=f"references ({reference['datasets']} datasets with every single detector)",
        title_justify="left",
    )
    for column in ("", "mean ROC-AUC", "vs best single", "vs oracle", "worst vs best single"):
        table.add_column(column, justify="left" if not column else "right", no_wrap=not column)
    table.add_row(ORACLE_ROW, f"{reference['oracle_mean_roc_auc']}", "", "", "")
    table.add_row(
        f"best single: {reference['best_single']}", f"{reference['best_single_mean_roc_auc']}", "", "", ""
    )
    for name, row in reference["combined"].items():
        table.add_row(
            name,
            f"{row['mean_roc_auc']}",
            f"{row['vs_best_single']:+.4f}",
            f"{row['vs_oracle']:+.4f}",
            f"{row['worst_gap_to_best_single']:+.4f}",
        )
    return table
