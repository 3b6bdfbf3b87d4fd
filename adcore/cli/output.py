"""Where ``run`` and ``score`` send their per-row output: a file, or stdout like any Unix filter.

The rules, in one place so both commands (and their help and docs) agree:

- ``--output FILE``: the file, written atomically; its extension names the format. ``--format``
  may name it for a file without a known extension, and must agree with one that has it.
- no ``--output``, or ``--output -``: the rows go to stdout in ``--format`` (default csv), and
  the human summary goes to stderr. Binary formats (parquet, npy) are refused on a terminal.
- ``--json`` prints the summary on stdout *instead of* the rows: stdout carries one thing, so
  ``--json | jq`` always works. Add ``--output FILE`` to keep the rows too; ``--output -`` with
  ``--json`` asks for two things on stdout and is refused.
- ``adcore run ... | head``: a reader that stops early is not an error (exit 0, no message).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import IO

STDOUT = "-"
BINARY_FORMATS = ("parquet", "npy")


class OutputFormat(str, Enum):
    csv = "csv"
    tsv = "tsv"
    jsonl = "jsonl"
    json = "json"
    parquet = "parquet"
    npy = "npy"


@dataclass(frozen=True)
class OutputTarget:
    """Where the rows go: ``path`` (a file), ``stream`` (stdout), or nowhere (``--json`` alone)."""

    path: str | None
    fmt: str | None
    stream: IO[bytes] | None = None

    @property
    def writes_rows(self) -> bool:
        return self.path is not None or self.stream is not None

    @property
    def on_terminal(self) -> bool:
        """The rows are shown on a terminal: nothing else may draw there meanwhile."""
        return self.stream is not None and _stdout_is_terminal()

    @property
    def name(self) -> str | None:
        """What the summaries call the output: the file, ``-`` for stdout, None when not written."""
        if self.stream is not None:
            return STDOUT
        return self.path


def resolve_output(
    output: str | None, fmt: OutputFormat | None, as_json: bool, *, input_path: str | None = None
) -> OutputTarget:
    """Check ``--output``/``--format``/``--json`` together, before any data is read or fitted.

    ``input_path`` is the command's ``--input``: an output that is that file (by any name or
    link) is refused here, before a byte is written, since the scores would replace the data.
    """
    from adcore.errors import ParameterError

    chosen = fmt.value if fmt is not None else None
    if output is not None and output != STDOUT:
        return OutputTarget(output, _file_format(output, chosen, input_path))
    if as_json:
        if output == STDOUT:
            raise ParameterError(
                "--json prints the summary on stdout, so the rows cannot go there too: "
                "write them to a file (--output scores.csv), or drop --json"
            )
        if chosen is not None:
            raise ParameterError(
                "--format sets the rows' format, but --json prints the summary instead of the rows: "
                "add --output FILE to write the rows as well"
            )
        return OutputTarget(None, None)
    chosen = chosen or "csv"
    if chosen in BINARY_FORMATS and _stdout_is_terminal():
        raise ParameterError(
            f"--format {chosen} is binary and stdout is a terminal: redirect it (> scores.{chosen}) "
            f"or use --output scores.{chosen}"
        )
    return OutputTarget(None, chosen, stream=sys.stdout.buffer)


def _file_format(path: str, chosen: str | None, input_path: str | None = None) -> str:
    """The extension's format; ``--format`` names it when there is none, and must not contradict it."""
    from adcore.data import check_output_path, format_from_path
    from adcore.errors import DataError, ParameterError

    try:
        named: str | None = format_from_path(path)
    except DataError:  # no extension, or one adcore does not know: --format decides
        named = None
    if chosen is not None and named is not None and named != chosen:
        raise ParameterError(
            f"--format {chosen} disagrees with the extension of {path} ({named}): "
            "drop --format, or give the file a matching name"
        )
    inputs = () if input_path is None else (input_path,)
    return check_output_path(path, chosen if named is None else None, inputs=inputs)


def _stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def reader_may_leave() -> Iterator[None]:
    """Writing rows to a pipe whose reader stopped early (``| head``) ends quietly.

    Later writes to stdout, and Python's own flush at exit, go to the null device, so there is
    neither a traceback nor click's exit code 1; the summary on stderr is still printed.
    """
    try:
        yield
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
