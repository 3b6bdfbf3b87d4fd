"""Detector parameters: pydantic models, their JSON Schema, and ``KEY=VALUE`` parsing.

A plugin describes its parameters in one of three ways (``register(..., params=...)``):

- a pydantic model class, or a lazy ``"module:Model"`` reference;
- a list of dicts ``{"name", "type", "default", "description", "choices"}`` (cheap to
  register: plugins that wrap a heavy library ship such a catalog, so listing never
  imports the library);
- nothing: the parameters are read from the factory's signature and numpydoc docstring.

Every form ends as a pydantic model with ``extra="forbid"``, so a misspelled parameter
is an error that names the close match rather than a silently ignored keyword.
"""

from __future__ import annotations

import difflib
import inspect
import json
import re
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


def _annotation_for(spec: dict[str, Any]) -> Any:
    choices = spec.get("choices")
    if choices:
        base: Any = Literal[tuple(choices)]  # type: ignore[misc]
    else:
        type_name = spec.get("type", "any")
        if isinstance(type_name, (list, tuple)):
            members = tuple(_TYPE_NAMES.get(t, Any) for t in type_name)
            base = typing.Union[members] if len(members) > 1 else members[0]  # noqa: UP007
        else:
            base = _TYPE_NAMES.get(str(type_name), Any)
    if spec.get("nullable") or spec.get("default", ...) is None:
        return Optional[base]  # noqa: UP045
    return base


def model_from_specs(name: str, specs: list[dict[str, Any]]) -> type:
    """Build a pydantic model from a list of parameter dicts."""
    from pydantic import Field, create_model

    fields: dict[str, Any] = {}
    for spec in specs:
        default = spec.get("default", ...)
        constraints = {k: spec[k] for k in ("ge", "gt", "le", "lt") if k in spec}
        fields[spec["name"]] = (
            _annotation_for(spec),
            Field(default, description=spec.get("description") or None, **constraints),
        )
    model_name = re.sub(r"\W", "_", name.title()) + "Params"
    return create_model(model_name, __base__=_base_model(), **fields)


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

    fields = model.model_fields  # type: ignore[attr-defined]
    for key in values:
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(fields) or "none"
            raise ParameterError(f"{qualified_name} has no parameter {key!r}{hint} (parameters: {known})")
    try:
        instance = model(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "?"
        raise ParameterError(
            f"{qualified_name}: parameter {where!r}: {err.get('msg')} (got {err.get('input')!r})"
        ) from None
    return {k: getattr(instance, k) for k in values}


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
                for k, f in model.model_fields.items()  # type: ignore[attr-defined]
            },
        }


def describe_fields(model: type) -> list[dict[str, Any]]:
    """One row per parameter: name, type, default, description (for tables)."""
    rows = []
    for name, field in model.model_fields.items():  # type: ignore[attr-defined]
        annotation = field.annotation
        type_text = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
        default = "required" if field.is_required() else repr(field.default)
        rows.append(
            {"name": name, "type": type_text, "default": default, "description": field.description or ""}
        )
    return rows


def parse_key_values(pairs: list[str], model: type | None = None) -> dict[str, Any]:
    """Turn ``["n_bins=20", "method=fast"]`` into typed values.

    A value is read as JSON (``10``, ``0.5``, ``true``, ``null``, ``[1, 2]``) unless the
    parameter is a plain string in the schema, so ``method=10`` stays ``"10"`` there.
    """
    out: dict[str, Any] = {}
    fields = model.model_fields if model is not None else {}  # type: ignore[attr-defined]
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
