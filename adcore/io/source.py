"""What every reader returns: the feature names plus a stream of chunks.

A chunk holds a block of feature rows, the passthrough columns of the same rows, and a locator
that turns a row index within the chunk into a place a person can find in the input (a 1-based
line in a text file, a 0-based row otherwise), so the shared checks can name it in an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from adcore.errors import DataError

Locator = Callable[[int], dict]


def _row_locator(first_row: int) -> Locator:
    return lambda i: {"row": first_row + int(i)}


def _line_locator(lines: np.ndarray) -> Locator:
    return lambda i: {"line": int(lines[i])}


@dataclass
class _Chunk:
    X: np.ndarray
    passthrough: dict[str, list]
    where: Locator


@dataclass
class _Source:
    names: list[str]
    chunks: Iterator[_Chunk]


def _open_binary(path: str) -> Any:
    try:
        return open(path, "rb")  # owned and closed by the chunk generator
    except OSError as e:
        raise DataError(f"cannot open the file ({e.strerror})", path=path) from None
