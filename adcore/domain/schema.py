"""The training data's schema, and the check that new data matches it before scoring.

A detector given columns in another order, or one column short, still returns numbers;
they are just wrong. So a stored model remembers what it was trained on and
:func:`check_schema` refuses data that differs, naming the difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from adcore.errors import SchemaMismatchError


def generated_names(names: Sequence[str]) -> bool:
    """True for the placeholder names readers give unnamed columns (x0, x1, ...)."""
    return list(names) == [f"x{j}" for j in range(len(names))]


@dataclass
class TrainingSchema:
    """What a model was trained on. ``feature_names`` is ``None`` when the data had no names.

    ``read_options`` keeps how files were read at fit (``columns``, ``header``, ``nan``),
    so new files are read the same way: an explicit column selection is applied by name.
    """

    n_samples: int
    n_features: int
    feature_names: list[str] | None
    dtypes: list[str]
    read_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dataset(
        cls,
        dataset: Any,
        source: Any = None,
        *,
        columns: Sequence[str] | None = None,
        header: bool | None = None,
        nan_policy: str = "error",
    ) -> TrainingSchema:
        names = list(dataset.feature_names)
        dtypes = ["float64"] * len(names)
        if type(source).__module__.startswith("pandas") and hasattr(source, "dtypes"):
            dtypes = [str(source[n].dtype) if n in source.columns else "float64" for n in names]
        return cls(
            n_samples=dataset.n_samples,
            n_features=dataset.n_features,
            feature_names=None if generated_names(names) else names,
            dtypes=dtypes,
            read_options={"columns": list(columns) if columns else None, "header": header, "nan": nan_policy},
        )


def _names(items: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in items[:5])
    return shown + (f" and {len(items) - 5} more" if len(items) > 5 else "")


def check_schema(schema: TrainingSchema, names: Sequence[str], *, model: str = "the model") -> None:
    """Raise ``SchemaMismatchError`` unless ``names`` are the training features.

    The count is always checked; names and their order when both sides have real names
    (an array or a header-less file has none, so only its width can be checked).
    """
    names = list(names)
    known = schema.feature_names
    comparable = known is not None and not generated_names(names)
    missing = [n for n in known if n not in names] if comparable and known else []
    extra = [n for n in names if known and n not in known] if comparable else []
    detail = "; ".join(
        part
        for part in (
            f"missing {_names(missing)}" if missing else "",
            f"not in the training data {_names(extra)}" if extra else "",
        )
        if part
    )
    if len(names) != schema.n_features:
        raise SchemaMismatchError(
            f"{model} was trained on {schema.n_features} features, the input has {len(names)}"
            + (f" ({detail})" if detail else "")
        )
    if not comparable or names == known:
        return
    if detail:
        raise SchemaMismatchError(f"the input's features differ from those {model} was trained on: {detail}")
    assert known is not None
    at = next(i for i, (a, b) in enumerate(zip(names, known, strict=True)) if a != b)
    raise SchemaMismatchError(
        f"the input has the training features in another order (position {at + 1}: {names[at]!r}, expected "
        f"{known[at]!r}); {model} expects {_names(known)}: reorder the columns or select them with --columns"
    )
