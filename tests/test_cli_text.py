"""How the CLI's messages read: counts, numbers, timings and help paragraphs."""

from __future__ import annotations

import pytest
import typer

from adcore.cli.summaries import fit_time, seconds, seed_line, seed_used
from adcore.cli.text import NumberFormat, help_paragraphs, plural


@pytest.mark.parametrize(
    ("n", "word", "many", "expected"),
    [
        (1, "fit", None, "1 fit"),
        (0, "fit", None, "0 fits"),
        (2, "model version", None, "2 model versions"),
        (1, "model version", None, "1 model version"),
        (3, "anomaly", "anomalies", "3 anomalies"),
        (1, "anomaly", "anomalies", "1 anomaly"),
    ],
)
def test_plural(n, word, many, expected):
    assert plural(n, word, many) == expected


def test_one_precision_for_the_threshold_and_the_scores():
    number = NumberFormat.for_values([0.0, 2.9922e-17, 0.132815, -0.1399])
    assert number(0.0) == number(2.9922e-17) == number(-2.9922e-17) == "0.000000"
    assert number(0.132815) == "0.132815"
    assert number.exact(2.9922e-17) == "0.000000 (2.99e-17)"  # not zero: said so
    assert number.exact(0.0) == "0.000000" and number.exact(0.132815) == "0.132815"


def test_precision_follows_the_largest_value():
    assert NumberFormat.for_values([10.539197588108573, 21.587840809433963])(10.539197588108573) == "10.5392"
    assert NumberFormat.for_values([123456.7])(3.25) == "3"
    assert NumberFormat.for_values([3.5e12, 1.0])(3.5e12) == "3.50000e+12"  # outside: scientific
    assert NumberFormat.for_values([2e-9])(2e-9) == "2.00000e-09"
    assert NumberFormat.for_values([None, float("nan")])(0.0) == "0"
    assert NumberFormat.for_values([1.0])(float("nan")) == "nan"


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.0094, "0.0094s"), (0.41, "0.41s"), (3.8, "3.8s"), (12.34, "12.3s"), (212.4, "212s")],
)
def test_seconds(value, text):
    assert seconds(value) == text


def test_fit_time_shows_the_import_apart():
    assert fit_time({"fit_seconds": 0.41}, "pyod:iforest") == "fit 0.41s"
    assert fit_time({"fit_seconds": 0.41, "import_seconds": 3.8}, "pyod:iforest") == (
        "fit 0.41s (+3.8s importing pyod)"
    )
    assert fit_time({"fit_seconds": 0.41, "import_seconds": 1.2}, "ensemble") == "fit 0.41s (+1.2s importing)"


def test_seed_used_prefers_the_recorded_seed():
    assert seed_used({"seed": 12}, {"random_state": None}) == 12
    assert seed_used({"random_state": 5}, {}) == 5
    assert seed_used({}, {"random_state": 3}) == 3
    assert seed_used({"seed": None}, {"random_state": True}) is None
    assert seed_line(1234567) == "seed 1234567 (repeat with --seed 1234567)"
    assert seed_line(None) is None


def test_help_paragraphs_joins_hand_wrapped_lines():
    def command() -> None:
        """First line.

        A paragraph wrapped
        by hand at some width.

        Another one.
        """

    assert help_paragraphs(command) is command
    assert command.__doc__ == "First line.\n\nA paragraph wrapped by hand at some width.\n\nAnother one."


def _commands(group, path=()):
    """Every command of the app, with its path: ('run',), ('models', 'rm'), ..."""
    import click

    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        yield (*path, name), command




def _app_commands(*, unwrap: bool) -> list:
    from adcore.cli.app import build_app
    from adcore.cli.text import unwrap_help

    app = build_app(with_plugins=False)
    if unwrap:
        unwrap_help(app)
    return list(_commands(typer.main.get_command(app)))


def _hand_wrapped(help_text: str | None) -> bool:
    return any("\n" in p.strip() for p in (help_text or "").split("\n\n"))


def _as_built():
    for path, command in _app_commands(unwrap=False):
        yield pytest.param(command, id=" ".join(path))


@pytest.mark.parametrize("command", list(_as_built()))
def test_help_paragraphs_have_no_hand_made_line_breaks(command):
    # typer keeps a docstring's single line breaks: in an 80-column terminal they break sentences
    assert not _hand_wrapped(command.help), command.help


def test_unwrap_help_fixes_every_command_of_the_app():
    commands = _app_commands(unwrap=True)
    assert len(commands) >= 10
    assert [" ".join(path) for path, command in commands if _hand_wrapped(command.help)] == []
