"""How counts, numbers and help paragraphs read in the CLI's messages to people.

Machine output (rows, ``--json``) keeps full precision; these helpers only shape the text a
person reads on stderr and in ``--help``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., object])


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 fit``, ``2 fits``, ``1 model version``: the count and the word in the right number."""
    return f"{n} {word}" if n == 1 else f"{n} {many or word + 's'}"


@dataclass(frozen=True)
class NumberFormat:
    """One precision for every number in a summary, set by the largest of them.

    A threshold of ``0`` beside a score of ``2.9922e-17`` reads as if the row were far above the
    threshold, when both are zero to the precision of the scores. Printing every number with
    the same count of decimals (six significant digits of the largest magnitude) keeps them
    comparable at a glance; outside a readable range, all are printed in scientific notation.
    """

    decimals: int | None  # None: scientific notation

    @classmethod
    def for_values(cls, values: Iterable[float | None]) -> NumberFormat:
        finite = [abs(float(v)) for v in values if v is not None and math.isfinite(float(v))]
        scale = max(finite, default=0.0)
        if scale == 0.0:
            return cls(decimals=0)
        exponent = math.floor(math.log10(scale))
        if -4 <= exponent < 7:
            return cls(decimals=max(0, 5 - exponent))
        return cls(decimals=None)

    def __call__(self, value: float | None) -> str:
        if value is None or not math.isfinite(float(value)):
            return str(value)
        text = f"{value:.{self.decimals}f}" if self.decimals is not None else f"{value:.5e}"
        if text.startswith("-") and text.strip("-0.") == "":
            return text[1:]  # "-0.000000": a tiny negative is zero at this precision too
        return text

    def exact(self, value: float | None) -> str:
        """As ``__call__``, plus the value itself when it is not zero but prints as zero.

        For a threshold: ``0.000000 (3e-17)`` reads like the scores beside it and still says
        that the threshold is not exactly zero.
        """
        text = self(value)
        if value is not None and value != 0 and math.isfinite(float(value)) and text.strip("0.") == "":
            return f"{text} ({float(value):.3g})"
        return text


def unwrapped(doc: str) -> str:
    """A docstring with each paragraph on one line; paragraphs stay separated by blank lines."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def help_paragraphs(func: F) -> F:
    """Join a command docstring's hand-wrapped lines, so ``--help`` wraps each paragraph itself.

    Typer keeps single line breaks in the paragraphs after the first, so a docstring wrapped at
    90 columns shows a stray break in an 80-column terminal. The function is returned unchanged
    otherwise.
    """
    func.__doc__ = unwrapped(func.__doc__ or "")
    return func


def unwrap_help(app: Any) -> None:
    """:func:`help_paragraphs` for every command of a Typer app, plugins' commands included.

    Sets each command's ``help`` from its docstring (a command given ``help=`` is left alone),
    so the functions themselves are not modified. Call it once the app has all its commands.
    """
    for info in app.registered_commands:
        if info.help is None and info.callback is not None and info.callback.__doc__:
            info.help = unwrapped(info.callback.__doc__)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            unwrap_help(group.typer_instance)
