"""``adcore explain``: why each anomaly is anomalous, feature by feature."""

from __future__ import annotations

import typer

from adcore.cli import options
from adcore.cli.console import print_json, stdout_console


def register(app: typer.Typer) -> None:
    @app.command("explain")
    def explain_cmd(
        input_path: str = options.INPUT,
        model: str = typer.Option(None, "--model", "-m", help="A stored model: NAME or NAME@VERSION."),
        algo: str = typer.Option(None, "--algo", "-a", help="Or: fit this detector on --input first."),
        top: int = typer.Option(3, "--top", "-k", help="Features shown per anomaly (largest contributions)."),
        limit: int = typer.Option(20, "--limit", help="Anomalies shown, most anomalous first (0 = all)."),
        engine: str = typer.Option("perturbation", "--engine", help="perturbation (default) or shap."),
        store: str = typer.Option(
            None, "--store", help="Model store URL (default: ADCORE_STORE or ADCORE_HOME)."
        ),
        contamination: float = options.CONTAMINATION,
        param: list[str] = options.PARAM,
        seed: int = options.SEED,
        columns: str = options.COLUMNS,
        no_header: bool = options.NO_HEADER,
        as_json: bool = options.JSON,
    ) -> None:
        """Explain anomalies: how much each feature raises a row's score above the training median's.

        A feature's attribution is the score drop when that feature alone is moved to the
        training median; the largest ones say why the row stands out.
        """
        import numpy as np

        from adcore.errors import ParameterError
        from adcore.services.explain import explain

        if (model is None) == (algo is None):
            raise ParameterError("give exactly one of --model NAME[@VERSION] or --algo NAME")
        if top < 1 or limit < 0:
            raise ParameterError("--top must be at least 1 and --limit at least 0")
        if model is not None:
            from adcore.cli.fit_score import load_stored_model

            fitted = load_stored_model(model, store)
            dataset = fitted.as_dataset(input_path)
            scores, labels = fitted.score_dataset(dataset)
            detector, source = fitted.detector, fitted.ref
        else:
            from adcore.cli.run import build_detector
            from adcore.data import read_dataset

            detector = build_detector(algo, param, contamination, None, seed)
            dataset = read_dataset(
                input_path,
                columns=options.split_columns(columns),
                header=options.header_flag(no_header),
                min_rows=2,
            )
            detector.fit(dataset.X)
            scores, labels, source = detector.decision_scores_, detector.labels_, detector.algorithm_name
        rows = np.flatnonzero(labels == 1)
        rows = rows[np.argsort(-scores[rows], kind="stable")]
        if limit:
            rows = rows[:limit]
        explanations = explain(
            detector, dataset.X[rows], feature_names=list(dataset.feature_names), top=top, engine=engine
        )
        input_rows = dataset.kept_rows[rows] if dataset.kept_rows is not None else rows
        items = [
            {"row": int(r), "score": float(scores[i]), "explanation": e}
            for r, i, e in zip(input_rows, rows, explanations, strict=True)
        ]
        if as_json:
            print_json({"model": source, "n_anomalies": int((labels == 1).sum()), "anomalies": items})
            return
        from rich.table import Table

        table = Table(
            title=f"{source}: {int((labels == 1).sum())} anomalies, top {len(items)} explained",
            title_justify="left",
        )
        table.add_column("row", justify="right")
        table.add_column("score", justify="right")
        table.add_column(f"top {top} features (score drop when moved to the training median)")
        for item in items:
            parts = [f"{name} {value:+.3g}" for name, value in item["explanation"].items() if value != 0]
            why = ", ".join(parts) or "no single feature: the combination is unusual"
            table.add_row(str(item["row"]), f"{item['score']:.4g}", why)
        stdout_console().print(table)
