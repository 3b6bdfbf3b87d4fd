"""How many records a stream waits for before it scores, and when a young model is refitted.

A stream must not run blind for a whole window: a window (batch) detector is first fitted
after a warm-up sized to the detector, not to ``--window``, and refitted as its training data
grows (:func:`growth_points`: warm-up x 2, x 4 ... then the window), so early records are
scored by a small model that is soon replaced by a better one. The same schedule restarts
after a drift with ``--retrain on-drift``: the model then grows from the records since the
change instead of waiting a whole window of stale scores.

The warm-up of a window detector is the largest of :data:`DEFAULT_WARMUP`, the detector's
own ``min_records`` (an integer attribute of its class or instance: the fewest rows a fit
means something on) and what its parameters imply: a neighbour count ``k`` needs ``k + 1``
rows (``n_neighbors`` for KNN and LOF, ``n_clusters``, ``n_components``...), also inside
an ensemble's ``member_params``. It never exceeds the window. An online detector needs only
its ``min_records`` (usually 1): it learns every record after scoring it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from adcore.services.streaming.config import DEFAULT_WARMUP

#: Parameters that count rows a fit needs: a fit needs at least one more row than each.
_ROW_COUNTS = ("n_neighbors", "k", "n_clusters", "n_components", "min_samples", "n_neighbours")


def rows_needed(params: Mapping[str, Any]) -> int:
    """The fewest rows these parameters allow a fit on (0 when they say nothing)."""
    needed = 0
    for name, value in _walk(params):
        if name in _ROW_COUNTS and isinstance(value, int) and not isinstance(value, bool):
            needed = max(needed, value + 1)
    return needed


def _walk(params: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every ``(name, value)`` pair, nested mappings (an ensemble's ``member_params``) included."""
    for name, value in params.items():
        if isinstance(value, Mapping):
            yield from _walk(value)
        else:
            yield str(name), value


def window_warmup(detector: Any, window: int) -> int:
    """The default warm-up of a window detector (an unfitted ``adcore.Detector``), at most ``window``."""
    needed = DEFAULT_WARMUP
    params: dict[str, Any] = {}
    try:
        params = dict(detector.validated_params())
    except Exception:  # parameters the fit will refuse: the first fit's check says why
        params = dict(detector.get_params())
    needed = max(needed, rows_needed(params))
    declared = _declared_min_records(detector)
    if declared:
        needed = max(needed, declared)
    return max(2, min(window, needed))


def _declared_min_records(detector: Any) -> int:
    """A class's integer ``min_records`` (0 when it declares none)."""
    try:
        factory = detector._factory()
    except Exception:
        return 0
    value = getattr(factory, "min_records", None)
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else 0


def growth_points(warmup: int, window: int) -> list[int]:
    """Training sizes at which a young model is refitted: warm-up x 2, x 4 ... and the window.

    ``[]`` when the warm-up is the window. The sizes double, so a stream of ``n`` records
    pays about ``log2(window / warmup)`` extra fits, whose total cost is below two fits
    on the full window.
    """
    points = []
    size = warmup * 2
    while size < window:
        points.append(size)
        size *= 2
    if warmup < window:
        points.append(window)
    return points


def next_growth(n_since: int, warmup: int, window: int) -> int | None:
    """The next training size after ``n_since`` records at which to refit (None: the window is full)."""
    for point in growth_points(warmup, window):
        if point > n_since:
            return point
    return None
