"""``adcore plugins``: every plugin found, its version, and what broke it if anything."""

from __future__ import annotations

import typer

from adcore.cli.console import print_json, stdout_console


def register(app: typer.Typer) -> None:
    @app.command("plugins")
    def plugins_cmd(
        as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
        show_all: bool = typer.Option(True, "--all/--no-builtins", help="Include adcore's built-in plugin."),
    ) -> None:
        """List installed plugins: name, version, hooks, ok or the error that broke it."""
        from adcore.plugins import get_host

        host = get_host()
        infos = [i for i in host.plugins() if show_all or not i.builtin]
        if as_json:
            print_json([i.to_dict() for i in infos])
            return
        from rich.table import Table

        counts: dict[str, int] = {}
        for reg in host.registry("detector").values():
            counts[reg.plugin] = counts.get(reg.plugin, 0) + 1
        table = Table(title=f"{len(infos)} plugins", title_justify="left")
        for column in ("name", "version", "detectors", "hooks", "status"):
            table.add_column(column, overflow="fold")
        for info in infos:
            status = "[green]ok[/]" if info.ok else "[red]" + "; ".join(info.errors) + "[/]"
            version = info.version or ("built-in" if info.builtin else "?")
            hooks = ", ".join(h.removeprefix("register_") for h in info.hooks)
            table.add_row(info.name, version, str(counts.get(info.name, 0)), hooks, status)
        stdout_console().print(table)
