"""Detector parameters: pydantic models, their JSON Schema, and ``KEY=VALUE`` parsing.

A plugin describes its parameters in one of three ways (``register(..., params=...)``):

- a pydantic model class, or a lazy ``"module:Model"`` reference;
- a list of dicts ``{"name", "type", "default", "description", "choices"}`` (cheap to
  register: plugins that wrap a heavy library ship such a catalog, so listing never
  imports the library). Known ranges go in ``ge``/``gt``/``le``/``lt``, for the whole
  value, or per type in ``bounds_by_type`` (``{"int": {"ge": 1}, "float": {"gt": 0,
  "le": 1}}`` for a parameter that takes a count or a fraction); ``choices`` with other
  types (``"type": ["int", "str"], "choices": ["auto"]``) admit those strings besides;
- nothing: the parameters are read from the factory's signature and numpydoc docstring.

Every form ends as a pydantic model with ``extra="forbid"``, so a misspelled parameter
is an error that names the close match rather than a silently ignored keyword, and a
value outside a declared range is refused before the fit, with the detector's and the
parameter's name. :func:`describe_fields` shows the ranges (``adcore algos show``).
"""

from __future__ import annotations

import difflib
import inspect
import json
import re
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, Optional

from adcore.errors import ParameterError

_TYPE_NAMES: dict[str, Any] = {
    "int": int,
    "float": float,
    "bool": bool,
    "str": str,
    "number": float,
    "list": list,
    "dict": dict,
    "any": Any,
}


def _base_model() -> type:
    from pydantic import BaseModel, ConfigDict

    class DetectorParams(BaseModel):
        """Base of every detector's parameter model: unknown keys are errors."""

        model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, protected_namespaces=())

    return DetectorParams


_BOUNDS = ("ge", "gt", "le", "lt")


def _bounded(type_name: str, bounds: dict[str, Any] | None, *, exclusive: bool = False) -> Any:
    """The type for ``type_name``, with its own bounds where the spec gives them per type.

    ``exclusive`` (an int and a float in one union, each with its meaning: a count or a
    fraction) keeps each number in its own member: pydantic would otherwise read an int the
    int member refuses as a float (``max_samples=1`` as the fraction 1.0, all the rows) and
    a whole float as an int.
    """
    from pydantic import BeforeValidator, Field

    base = _TYPE_NAMES.get(str(type_name), Any)
    extra: list[Any] = []
    if bounds:
        extra.append(Field(**{k: bounds[k] for k in _BOUNDS if k in bounds}))
    if exclusive and base in (int, float):
        extra.append(BeforeValidator(_only_ints if base is int else _only_floats))
    return typing.Annotated[(base, *extra)] if extra else base


def _only_ints(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("a float here is a fraction, not a count")
    return value


def _only_floats(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError("an int here is a count, not a fraction")
    return value


def _annotation_for(spec: dict[str, Any]) -> Any:
    """A spec's type: its choices, or its type names (each with its bounds_by_type), maybe null.

    Choices are a ``Literal``: the only values, unless they are strings and the spec names
    other types besides ``str`` (``"type": ["int", "str"], "choices": ["auto"]``), where
    they are the strings admitted beside those types. Integers come before floats in a
    union, so a count stays an ``int`` where a fraction is a ``float``.
    """
    choices = spec.get("choices")
    type_names = spec.get("type", "any")
    type_names = [type_names] if isinstance(type_names, str) else list(type_names or ["any"])
    per_type = spec.get("bounds_by_type") or {}
    members: list[Any] = [Literal[tuple(choices)]] if choices else []  # type: ignore[misc]
    if not choices:
        others = type_names
    elif all(isinstance(c, str) for c in choices):
        others = [t for t in type_names if t not in ("str", "any")]
    else:
        others = []
    others = sorted(others, key=lambda t: t != "int")
    exclusive = bool(per_type) and {"int", "float"} <= set(others)
    members += [_bounded(t, per_type.get(t), exclusive=exclusive) for t in others]
    base: Any = typing.Union[tuple(members)] if len(members) > 1 else members[0]  # noqa: UP007
    if spec.get("nullable") or spec.get("default", ...) is None:
        return Optional[base]  # noqa: UP045
    return base


def _reserved_names() -> frozenset[str]:
    """Attribute names of pydantic's BaseModel (``copy``, ``json``...): a field must not shadow them."""
    from pydantic import BaseModel

    return frozenset(name for name in dir(BaseModel) if not name.startswith("_"))


def model_from_specs(name: str, specs: list[dict[str, Any]]) -> type:
    """Build a pydantic model from a list of parameter dicts.

    A parameter named like a BaseModel attribute (PyOD's PCA has ``copy``) is stored under
    another attribute name with its own name as the alias, so users still pass ``copy``
    and pydantic has nothing to warn about (see :func:`public_fields`).
    """
    from pydantic import Field, create_model

    reserved = _reserved_names()
    fields: dict[str, Any] = {}
    for spec in specs:
        public = spec["name"]
        default = spec.get("default", ...)
        constraints = {k: spec[k] for k in _BOUNDS if k in spec}
        attribute = public
        while attribute in reserved or (attribute != public and attribute in fields):
            attribute += "_"
        if attribute != public:
            constraints["alias"] = public
        fields[attribute] = (
            _annotation_for(spec),
            Field(default, description=spec.get("description") or None, **constraints),
        )
    model_name = re.sub(r"\W", "_", name.title()) + "Params"
    return create_model(model_name, __base__=_base_model(), **fields)


def public_fields(model: type) -> dict[str, Any]:
    """A parameter model's fields by the names users pass: the alias where a field has one."""
    fields = model.model_fields  # type: ignore[attr-defined]
    return {(info.alias or name): info for name, info in fields.items()}


def parse_numpydoc_params(doc: str | None) -> dict[str, str]:
    """Map parameter name -> first paragraph of its description in a numpydoc docstring."""
    if not doc:
        return {}
    text = inspect.cleandoc(doc)
    match = re.search(r"^Parameters\n-{3,}\n(.*?)(?:^\S[^\n]*\n-{3,}\n|\Z)", text, re.S | re.M)
    if not match:
        return {}
    out: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    for line in match.group(1).splitlines():
        header = re.match(r"^(\w+)\s*(?::.*)?$", line)
        if header and not line.startswith(" "):
            if current:
                out[current] = " ".join(lines).strip()
            current, lines = header.group(1), []
        elif current is not None:
            if not line.strip() and lines:
                lines.append("\n")
            else:
                lines.append(line.strip())
    if current:
        out[current] = " ".join(lines).strip()
    return {k: v.split("\n")[0].strip() for k, v in out.items()}


def specs_from_signature(factory: Callable[..., Any]) -> list[dict[str, Any]]:
    """Parameter dicts read from a factory's signature and docstring."""
    target = factory.__init__ if inspect.isclass(factory) else factory  # type: ignore[misc]
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return []
    docs = parse_numpydoc_params(inspect.getdoc(factory))
    specs = []
    for param in signature.parameters.values():
        if param.name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = param.default if param.default is not inspect.Parameter.empty else ...
        type_name: Any = "any"
        if isinstance(param.annotation, type) and param.annotation.__name__ in _TYPE_NAMES:
            type_name = param.annotation.__name__
        elif default is not ... and default is not None and type(default).__name__ in _TYPE_NAMES:
            type_name = type(default).__name__
            if type_name == "float":
                type_name = "float"
        spec: dict[str, Any] = {
            "name": param.name,
            "type": type_name,
            "description": docs.get(param.name, ""),
        }
        if default is not ...:
            spec["default"] = default
        specs.append(spec)
    return specs


def params_model(qualified_name: str, params: Any, factory_loader: Callable[[], Any]) -> type:
    """The pydantic model for a registration's ``params`` metadata (see module docstring)."""
    from pydantic import BaseModel

    if isinstance(params, str):
        from adcore.plugins import resolve_reference

        params = resolve_reference(params)
    if isinstance(params, type) and issubclass(params, BaseModel):
        return params
    if params is None:
        params = specs_from_signature(factory_loader())
    if callable(params) and not isinstance(params, type):
        params = params()
    if isinstance(params, (list, tuple)):
        return model_from_specs(qualified_name, list(params))
    raise ParameterError(
        f"{qualified_name}: params must be a pydantic model or a list of dicts, got {params!r}"
    )


def validate_params(qualified_name: str, model: type, values: dict[str, Any]) -> dict[str, Any]:
    """Validate ``values`` against ``model``; return only the keys the caller set, coerced.

    Unset keys are left out so the detector's own defaults apply, exactly as when the
    library is called directly.
    """
    from pydantic import ValidationError

    fields = public_fields(model)
    attributes = {(info.alias or name): name for name, info in model.model_fields.items()}  # type: ignore[attr-defined]
    for key in values:
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(fields) or "none"
            raise ParameterError(f"{qualified_name} has no parameter {key!r}{hint} (parameters: {known})")
    try:
        instance = model(**values)
    except ValidationError as exc:
        raise ParameterError(_one_line(qualified_name, exc.errors(), fields)) from None
    return {k: getattr(instance, attributes[k]) for k in values}


def _one_line(qualified_name: str, errors: list[Any], fields: dict[str, Any]) -> str:
    """The first error, in one line naming the detector and the parameter.

    A union (``"auto"``, a count or a fraction) fails once per member, each message about
    one member only: say instead what the parameter admits (:func:`constraint_text`).
    """
    err = errors[0]
    loc = err.get("loc", ())
    name = str(loc[0]) if loc else "?"
    if len(loc) > 1 and name in fields and _is_union(fields[name].annotation):
        admits = constraint_text(fields[name]) or _type_text(fields[name].annotation)
        return f"{qualified_name}: parameter {name!r}: expected {admits} (got {err.get('input')!r})"
    where = ".".join(str(p) for p in loc) or "?"
    return f"{qualified_name}: parameter {where!r}: {err.get('msg')} (got {err.get('input')!r})"


def json_schema(model: type) -> dict[str, Any]:
    """JSON Schema of a parameter model (what ``adcore algos show --json`` prints)."""
    try:
        return model.model_json_schema()  # type: ignore[attr-defined]
    except Exception:  # a default that JSON cannot express still lists the fields
        return {
            "title": model.__name__,
            "type": "object",
            "properties": {
                k: {"description": f.description, "default": repr(f.default)}
                for k, f in public_fields(model).items()
            },
        }


def describe_fields(model: type) -> list[dict[str, Any]]:
    """One row per parameter: name, type, default, constraint, description (for tables).

    ``constraint`` says in words what validation refuses (``">= 1"``, ``"in (0, 0.5]"``,
    ``"one of: largest, mean, median"``; empty when any value of the type goes), so
    ``adcore algos show`` documents the same ranges that are enforced.
    """
    rows = []
    for name, field in public_fields(model).items():
        default = "required" if field.is_required() else repr(field.default)
        rows.append(
            {
                "name": name,
                "type": _type_text(field.annotation),
                "default": default,
                "constraint": constraint_text(field),
                "description": field.description or "",
            }
        )
    return rows


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _type_text(annotation: Any) -> str:
    """``int``, ``float | int | str``, ``Optional[int]``: the type without its Annotated bounds."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _type_text(typing.get_args(annotation)[0])
    if _is_union(annotation):
        args = typing.get_args(annotation)
        text = " | ".join(_type_text(a) for a in args if a is not type(None))
        return f"Optional[{text}]" if type(None) in args else text
    if typing.get_origin(annotation) is Literal:  # the constraint column lists the choices
        return " | ".join(dict.fromkeys(type(a).__name__ for a in typing.get_args(annotation)))
    name = getattr(annotation, "__name__", None)
    args = typing.get_args(annotation)
    if name and args and typing.get_origin(annotation) in (tuple, list, dict):
        return f"{name}[{', '.join('...' if a is Ellipsis else _type_text(a) for a in args)}]"
    if name and not args:
        return name
    return str(annotation).replace("typing.", "")


def _bounds_text(metadata: list[Any]) -> str:
    """``>= 1``, ``in (0, 0.5]``, ``<= 10``, ``length >= 1``, ``matches ^a$`` from pydantic's metadata."""
    found: dict[str, Any] = {}
    flat: list[Any] = []
    for item in metadata:  # a FieldInfo inside Annotated[...] carries its bounds in .metadata
        flat.extend(getattr(item, "metadata", None) or [item])
    for item in flat:
        for key in (*_BOUNDS, "min_length", "max_length", "pattern"):
            value = getattr(item, key, None)
            if value is not None:
                found[key] = value
    low = ("[", found["ge"]) if "ge" in found else ("(", found["gt"]) if "gt" in found else None
    high = ("]", found["le"]) if "le" in found else (")", found["lt"]) if "lt" in found else None
    parts = []
    if low and high:
        parts.append(f"in {low[0]}{low[1]}, {high[1]}{high[0]}")
    elif low:
        parts.append(f"{'>=' if low[0] == '[' else '>'} {low[1]}")
    elif high:
        parts.append(f"{'<=' if high[0] == ']' else '<'} {high[1]}")
    if "min_length" in found:
        parts.append(f"length >= {found['min_length']}")
    if "max_length" in found:
        parts.append(f"length <= {found['max_length']}")
    if "pattern" in found:
        parts.append(f"matches {found['pattern']}")
    return ", ".join(parts)


def _member_text(annotation: Any) -> str:
    """What one member of a type admits beyond its type: ``one of: a, b``, ``int >= 1``, ``items >= 1``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return "one of: " + ", ".join(str(a) for a in args)
    if origin is typing.Annotated:
        bounds = _bounds_text(list(args[1:]))
        return f"{_type_text(args[0])} {bounds}" if bounds else _member_text(args[0])
    if origin in (tuple, list) and args and typing.get_origin(args[0]) is typing.Annotated:
        bounds = _bounds_text(list(typing.get_args(args[0])[1:]))
        return f"items {bounds}" if bounds else ""
    return ""


def constraint_text(field: Any) -> str:
    """A pydantic field's ranges and choices in words (see :func:`describe_fields`).

    In a union, each member says what it admits (``one of: auto; or int >= 1; or float in
    (0, 1]``), unconstrained members included once another member is constrained.
    """
    annotation = field.annotation
    if _is_union(annotation):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
    else:
        members = [annotation]
    texts = [_member_text(m) for m in members]
    if len(members) > 1 and any(texts):
        texts = [t or f"any {_type_text(m)}" for t, m in zip(texts, members, strict=True)]
    own = _bounds_text(list(field.metadata))
    return ", ".join(t for t in [own, "; or ".join(t for t in texts if t)] if t)


_NOT_A_CHOICE = "__not_one_of_the_choices__"


def out_of_range_values(model: type) -> dict[str, list[Any]]:
    """Per parameter, values just outside each declared range, and a string that is no choice.

    What a conformance check feeds a detector to see validation refuse it before the fit:
    ``ge=1`` on an int gives 0, ``gt=0`` on a float 0.0, ``le=0.5`` gives 0.500001. In a
    union with an int member, a float bound gives non-integral values only (a whole float
    would be read as that int), and beside a bool, no 0 or 1 (read as False and True).
    Parameters without a range or choices are left out.
    """
    out: dict[str, list[Any]] = {}
    for name, field in public_fields(model).items():
        annotation = field.annotation
        members = list(typing.get_args(annotation)) if _is_union(annotation) else [annotation]
        members = [m for m in members if m is not type(None)]
        mixed = len(members) > 1
        values: list[Any] = []
        own = _bounds(list(field.metadata))
        for member in members:
            base, bounds = member, own
            if typing.get_origin(member) is typing.Annotated:
                base, *meta = typing.get_args(member)
                bounds = {**own, **_bounds(meta)}
            if typing.get_origin(base) is Literal:
                values.append(_NOT_A_CHOICE)
            elif base in (int, float) and bounds:
                found = _just_outside(bounds, integral=base is int, mixed=mixed)
                values += [v for v in found if not (bool in members and v in (0, 1))]  # bools
        if values:
            out[name] = list(dict.fromkeys(values))
    return out


def _bounds(metadata: list[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in metadata:
        for inner in getattr(item, "metadata", None) or [item]:
            found.update({k: getattr(inner, k) for k in _BOUNDS if getattr(inner, k, None) is not None})
    return found


def _just_outside(bounds: dict[str, Any], *, integral: bool, mixed: bool) -> list[Any]:
    def step(bound: float) -> float:
        return 1 if integral else 1e-6 * max(1.0, abs(bound))

    values: list[Any] = []
    if "ge" in bounds:
        values.append(bounds["ge"] - step(bounds["ge"]))
    if "gt" in bounds:
        values.append(bounds["gt"] - (step(bounds["gt"]) if mixed and not integral else 0))
    if "le" in bounds:
        values.append(bounds["le"] + step(bounds["le"]))
    if "lt" in bounds:
        values.append(bounds["lt"] + (step(bounds["lt"]) if mixed and not integral else 0))
    return [int(v) if integral else float(v) for v in values]


def parse_key_values(pairs: list[str], model: type | None = None) -> dict[str, Any]:
    """Turn ``["n_bins=20", "method=fast"]`` into typed values.

    A value is read as JSON (``10``, ``0.5``, ``true``, ``null``, ``[1, 2]``) unless the
    parameter is a plain string in the schema, so ``method=10`` stays ``"10"`` there.
    """
    out: dict[str, Any] = {}
    fields = public_fields(model) if model is not None else {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParameterError(f"--param expects KEY=VALUE, got {pair!r}")
        field = fields.get(key)
        if field is not None and field.annotation is str:
            out[key] = raw
            continue
        try:
            out[key] = json.loads(raw)
        except ValueError:
            lowered = raw.strip().lower()
            out[key] = {"true": True, "false": False, "none": None}.get(lowered, raw)
    return out
