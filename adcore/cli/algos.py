"""``adcore algos``: what detectors the installed plugins offer, and their parameters."""

from __future__ import annotations

import typer

from adcore.cli.console import print_json, stdout_console


def register(app: typer.Typer) -> None:
    algos = typer.Typer(help="List detectors, or show one's parameters.", no_args_is_help=False)

    @algos.callback(invoke_without_command=True)
    def list_cmd(
        ctx: typer.Context,
        as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
        plugin: str = typer.Option(None, "--plugin", help="Only this plugin's detectors."),
    ) -> None:
        """List every detector: qualified name, plugin, summary.

        A bare name (``iforest``) resolves to the row marked *; set ADCORE_PREFER=a,b
        to change which plugin wins. The time-series detectors (plugin 'timeseries', tag
        'timeseries': --algo ts:NAME --time COLUMN) follow in their own table.
        """
        if ctx.invoked_subcommand is not None:
            return
        from adcore.services.catalog import list_algorithms

        every = list_algorithms(timeseries=True)
        rows = [r for r in every if plugin is None or r["plugin"] == plugin]
        if as_json:
            print_json(rows)
            return
        from rich.table import Table

        tabular = [r for r in rows if r["plugin"] != "timeseries"]
        series = [r for r in rows if r["plugin"] == "timeseries"]
        console = stdout_console()
        if tabular or not series:
            table = Table(
                title=f"{len(tabular)} detectors  (* = what the bare name resolves to)", title_justify="left"
            )
            table.add_column("name", style="bold cyan", no_wrap=True)
            table.add_column("plugin", style="magenta")
            table.add_column("summary")
            for row in tabular:
                star = "*" if row["default_for_bare_name"] else " "
                note = f" [yellow](needs {', '.join(row['missing'])})[/]" if row["missing"] else ""
                table.add_row(f"{row['name']}{star}", row["plugin"], row["summary"] + note)
            console.print(table)
        if series:
            table = Table(
                title=f"{len(series)} time-series detectors  (--algo ts:NAME --time COL [--series COL])",
                title_justify="left",
            )
            table.add_column("name", style="bold cyan", no_wrap=True)
            table.add_column("summary")
            for row in series:
                table.add_row(row["name"], row["summary"])
            console.print(table)

    @algos.command("show")
    def show_cmd(
        name: str = typer.Argument(..., help="Detector name, e.g. core:hbos or iforest."),
        as_json: bool = typer.Option(False, "--json", help="Print the description and JSON Schema."),
    ) -> None:
        """Show one detector's parameters: type, default, meaning."""
        from adcore.services.catalog import describe_algorithm

        info = describe_algorithm(name)
        if as_json:
            print_json(info)
            return
        from rich.table import Table

        console = stdout_console()
        console.print(f"[bold cyan]{info['name']}[/]  ({info['plugin']})\n{info['summary']}")
        if info["missing"]:
            console.print(f"[yellow]needs (not installed): {', '.join(info['missing'])}[/]")
        table = Table(title="parameters (--param KEY=VALUE)", title_justify="left")
        columns = ("name", "type", "default", "constraint", "description")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in info["parameters"]:
            table.add_row(*(row.get(column, "") for column in columns))
        if not info["parameters"]:
            console.print("no parameters of its own")
        else:
            console.print(table)
        common = Table(title="common to every detector", title_justify="left")
        common.add_column("option")
        common.add_column("meaning")
        for key, text in info["common_parameters"].items():
            common.add_row(key, text)
        console.print(common)

    app.add_typer(algos, name="algos")
