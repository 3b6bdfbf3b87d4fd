"""Generate ``catalog.json``: PyOD's tabular detectors, discovered from the installed PyOD.

Run ``python -m adcore_pyod.generate`` after upgrading PyOD (``--check`` only compares).
The plugin registers from the JSON, so listing detectors never imports PyOD; a test
regenerates the catalog and compares, so it never goes stale silently.

Discovery walks every module of ``pyod.models`` and keeps the classes deriving from
``BaseDetector``, reading their source (see :mod:`adcore_pyod.scan`) so the result is the
same whichever optional packages are installed. ``needs`` lists the packages a detector's
module imports that PyOD does not install itself (torch, combo, ...), plus those PyOD's own
knowledge base names. :func:`cross_check` then imports what it can and verifies the
static view (class hierarchy, signature, the missing package of a failed import).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import importlib.metadata as metadata
import inspect
import io
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

from adcore_pyod import curation
from adcore_pyod.scan import ClassInfo, Param, SourceIndex

CATALOG_PATH = Path(__file__).with_name("catalog.json")
SCHEMA_VERSION = 1
_TYPE_WORDS = {
    "int": "int",
    "integer": "int",
    "float": "float",
    "bool": "bool",
    "boolean": "bool",
    "str": "str",
    "string": "str",
    "list": "list",
    "tuple": "list",
    "dict": "dict",
}
# Words in a numpydoc type that mean "an object the command line cannot express".
_OPAQUE = (
    "callable",
    "object",
    "estimator",
    "instance",
    "array",
    "randomstate",
    "torch",
    "detector",
    "regressor",
    "scaler",
    "module",
    "tensor",
    "encoder",
)


# ------------------------------------------------------------------ packages
def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(req: str) -> str:
    return re.split(r"[\s;<>=!~\[(]", req.strip(), maxsplit=1)[0]


def pyod_dependencies() -> tuple[set[str], dict[str, str]]:
    """Import names PyOD's hard requirements provide, and its extras' packages by normalized name."""
    hard_dists, extras = set(), {}
    for req in metadata.requires("pyod") or []:
        name = _requirement_name(req)
        if "extra ==" in req:
            extras[_normalize(name)] = name
        else:
            hard_dists.add(_normalize(name))
    provided = {"pyod"}
    for module, dists in metadata.packages_distributions().items():
        if any(_normalize(d) in hard_dists for d in dists):
            provided.add(module)
    return provided, extras


def knowledge_base(index: SourceIndex) -> dict[str, dict[str, Any]]:
    """PyOD's own algorithm metadata (data types, requirements), keyed by class path, if shipped."""
    path = index.root / "utils" / "knowledge" / "algorithms.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {v["class_path"]: v for v in data.values() if isinstance(v, dict) and "class_path" in v}


# ------------------------------------------------------------------ docstrings
def numpydoc_types(doc: str) -> dict[str, str]:
    """Parameter name -> the type text after ``name :`` in a numpydoc Parameters section."""
    match = re.search(
        r"^Parameters\n-{3,}\n(.*?)(?:^\S[^\n]*\n-{3,}\n|\Z)", inspect.cleandoc(doc), re.S | re.M
    )
    out: dict[str, str] = {}
    for line in (match.group(1) if match else "").splitlines():
        header = re.match(r"^(\w+)\s*:\s*(.*)$", line)
        if header and not line.startswith(" "):
            out[header.group(1)] = header.group(2).strip()
    return out


def summarize(doc: str, fallback: str) -> str:
    """The docstring's first sentence, without citations and links, at most 120 characters."""
    paragraph = doc.strip().split("\n\n")[0]
    text = " ".join(paragraph.split())
    text = re.sub(r"\s*:cite:`[^`]*`", "", text)
    text = re.sub(r"\s*(Paper:\s*)?https?://\S+", "", text)
    match = re.match(r"(.+?[\w)\]])\.(\s|$)", text)
    sentence = match.group(1) if match else " ".join(paragraph.splitlines()[0].split()) if paragraph else ""
    sentence = sentence.strip().rstrip(".")
    if not sentence:
        return fallback
    return sentence if len(sentence) <= 120 else sentence[:117].rstrip() + "..."


def param_spec(param: Param, type_text: str, description: str) -> dict[str, Any]:
    """A params-metadata dict (see adcore.domain.params) from a constructor parameter and its docs."""
    default, literal = param.default, param.default_source is None
    if isinstance(default, float) and not math.isfinite(default):
        literal = False
    original = re.split(r"optional|default", type_text, maxsplit=1, flags=re.I)[0]
    head = original.lower()
    spec: dict[str, Any] = {"name": param.name}
    choices = _choices(original)
    types: list[str] = []
    if not any(word in head.replace(" ", "").replace("-", "") for word in _OPAQUE):
        types = sorted({t for w, t in _TYPE_WORDS.items() if re.search(rf"\b{w}\b", head)})
        if literal and default is not None:
            kind = "list" if isinstance(default, (list, tuple)) else type(default).__name__
            if kind in ("int", "float", "bool", "str", "list", "dict"):
                types.append(kind)
    types = sorted(set(types))
    if choices and literal and default is not None and default not in choices:
        choices = None
    if choices and set(types) <= {"str"}:
        spec["type"] = "str"
        spec["choices"] = choices
    else:
        spec["type"] = types[0] if len(types) == 1 else (types or "any")
    if not literal:
        spec["default"] = None
        spec["nullable"] = True
        description = f"{description} (PyOD's default: {param.default_source or default!r})".strip()
    else:
        spec["default"] = list(default) if isinstance(default, tuple) else default
        if default is None or re.search(r"\bnone\b", head):
            spec["nullable"] = True
    spec["description"] = description
    return spec


def _constrain(name: str, specs: list[dict[str, Any]]) -> None:
    """Add curation's ranges and choices (:func:`curation.constraints`) to ``pyod:<name>``'s specs.

    They go right after the type, so the catalog reads name, type, range, default, meaning.
    """
    found = curation.constraints(name, [spec["name"] for spec in specs])
    for spec in specs:
        extra = found.get(spec["name"])
        if not extra:
            continue
        merged = {**spec, **extra}
        order = ["name", "type", *extra, *(k for k in spec if k not in extra and k not in ("name", "type"))]
        spec.clear()
        spec.update({k: merged[k] for k in order})


def stale_curation(catalog: dict[str, Any]) -> list[str]:
    """Constraints in :mod:`curation` that no longer meet a detector or parameter of the catalog."""
    params = {d["name"]: {p["name"] for p in d["params"]} for d in catalog["detectors"]}
    everywhere = set().union(*params.values()) if params else set()
    problems = [
        f"CONSTRAINTS[{p!r}]: no detector has it" for p in curation.CONSTRAINTS if p not in everywhere
    ]
    for name, own in curation.DETECTOR_CONSTRAINTS.items():
        if name not in params:
            problems.append(f"DETECTOR_CONSTRAINTS[{name!r}]: no such detector")
            continue
        problems += [
            f"DETECTOR_CONSTRAINTS[{name!r}][{p!r}]: pyod:{name} has no such parameter"
            for p in own
            if p not in params[name]
        ]
    return problems


def _choices(head: str) -> list[str] | None:
    """``{'a', 'b'}`` or ``str in ['a', 'b']`` in a type text, when every member is quoted."""
    match = re.search(r"\{([^{}]*)\}|\bin\s*\[([^\[\]]*)\]", head)
    if not match:
        return None
    body = match.group(1) if match.group(1) is not None else match.group(2)
    items = re.findall(r"'([^']*)'|\"([^\"]*)\"", body)
    values = [a or b for a, b in items]
    if not values or len(values) != len([p for p in body.split(",") if p.strip()]):
        return None
    return values


# ------------------------------------------------------------------ catalog
def exclusion_reason(index: SourceIndex, cls: ClassInfo, kb: dict[str, dict[str, Any]]) -> str | None:
    """Why a detector is not registered, or None to register it."""
    if cls.class_path in curation.EXCLUDED:
        return curation.EXCLUDED[cls.class_path]
    entry = kb.get(cls.class_path)
    module = cls.module.rsplit(".", 1)[-1]
    if entry is not None and "tabular" not in entry.get("data_types", ["tabular"]):
        return f"not tabular: PyOD lists it for {', '.join(entry['data_types'])} data"
    if entry is None and module.startswith("ts_"):
        return "not tabular: a time-series detector (windows over one sequence)"
    if entry is None and module.startswith("pyg_"):
        return "not tabular: a graph detector (needs a torch_geometric graph)"
    params, _ = index.constructor(cls)
    adapted = cls.class_path in curation.ADAPTERS
    required = [
        p.name for p in params if p.default is ... and not (adapted and p.name in curation.FIT_TIME_ARGS)
    ]
    if required:
        return f"no default for constructor argument(s) {', '.join(required)}"
    if index.fit_needs_y(cls):
        return "supervised: fit(X, y) needs labels"
    return None


def _short_names(classes: list[ClassInfo]) -> dict[str, str]:
    """Registration names: the module's name, as PyOD's users know it (``auto_encoder``: ``auto-encoder``)."""
    per_module: dict[str, list[ClassInfo]] = {}
    for cls in classes:
        per_module.setdefault(cls.module, []).append(cls)
    names = {}
    for module, members in per_module.items():
        stem = module.rsplit(".", 1)[-1].replace("_", "-")
        for cls in members:
            names[cls.class_path] = (
                stem if len(members) == 1 else f"{stem}-{cls.name.lower().replace('_', '-')}"
            )
    return names


def _needs(
    index: SourceIndex,
    cls: ClassInfo,
    kb_entry: dict[str, Any] | None,
    provided: set[str],
    extras: dict[str, str],
) -> list[str]:
    imports = index.external_imports(cls.module) | set((kb_entry or {}).get("requires", []))
    missing = {name for name in imports if name not in provided}
    return sorted({extras.get(_normalize(name), name) for name in missing})


def describe(
    index: SourceIndex,
    cls: ClassInfo,
    name: str,
    kb_entry: dict[str, Any] | None,
    provided: set[str],
    extras: dict[str, str],
) -> dict[str, Any]:
    """One catalog entry: everything registration and ``adcore algos show`` need."""
    params, _ = index.constructor(cls)
    from adcore import parse_numpydoc_params

    docs = parse_numpydoc_params(cls.docstring)
    types = numpydoc_types(cls.docstring)
    specs, omitted, fit_time = [], [], []
    for param in params:
        if param.name in curation.SHADOWED_PARAMS:
            omitted.append(param.name)
            continue
        if param.default is ... and param.name in curation.FIT_TIME_ARGS:
            fit_time.append(param.name)
            continue
        description = re.sub(r"\s*:cite:`[^`]*`", "", docs.get(param.name, ""))
        specs.append(param_spec(param, types.get(param.name, ""), description))
    _constrain(name, specs)
    adapter_params = []
    if cls.class_path in curation.GLOBAL_SEED_ADAPTERS:
        specs.append(dict(curation.ADAPTER_RANDOM_STATE))
        adapter_params.append(curation.ADAPTER_RANDOM_STATE["name"])
    full_name = (kb_entry or {}).get("full_name") or cls.name
    entry: dict[str, Any] = {
        "name": name,
        "class_path": cls.class_path,
        "factory": curation.ADAPTERS.get(cls.class_path, f"{cls.module}:{cls.name}"),
        "summary": summarize(cls.docstring, full_name),
        "full_name": full_name,
        "category": (kb_entry or {}).get("category"),
        "needs": _needs(index, cls, kb_entry, provided, extras),
        "params": specs,
    }
    if omitted:
        entry["omitted_params"] = omitted
    if fit_time:
        entry["fit_time_params"] = fit_time
    if adapter_params:
        entry["adapter_params"] = adapter_params
    return entry


def build_catalog(index: SourceIndex | None = None) -> dict[str, Any]:
    """The catalog of the installed PyOD (pure: reads source and metadata, imports no PyOD)."""
    index = index or SourceIndex()
    kb = knowledge_base(index)
    provided, extras = pyod_dependencies()
    kept: list[ClassInfo] = []
    excluded: list[dict[str, str]] = []
    for module in index.model_modules():
        info = index.module(module)
        assert info is not None
        for cls in info.classes.values():
            if cls.abstract or cls.name.startswith("Base") or not index.is_detector(cls):
                continue
            reason = exclusion_reason(index, cls, kb)
            if reason:
                excluded.append({"class_path": cls.class_path, "reason": reason})
            else:
                kept.append(cls)
    names = _short_names(kept)
    detectors = [
        describe(index, c, names[c.class_path], kb.get(c.class_path), provided, extras) for c in kept
    ]
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_by": "python -m adcore_pyod.generate",
        "pyod_version": metadata.version("pyod"),
        "detectors": sorted(detectors, key=lambda d: d["name"]),
        "excluded": sorted(excluded, key=lambda d: d["class_path"]),
    }


def render(catalog: dict[str, Any]) -> str:
    return json.dumps(catalog, indent=1, sort_keys=False, ensure_ascii=False) + "\n"


# ------------------------------------------------------------------ cross-check
def cross_check(catalog: dict[str, Any]) -> list[str]:
    """Import each registered detector where possible and compare with the static view.

    Returns problems (empty = consistent): a failed import whose missing package is not in
    ``needs``, a class that is not a ``BaseDetector``, a signature that differs.
    """
    from importlib.util import find_spec

    from pyod.models.base import BaseDetector

    problems = []
    for entry in catalog["detectors"]:
        module_name, _, class_name = entry["class_path"].rpartition(".")
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # some PyOD modules print when an import fails
                module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").split(".")[0]
            if _normalize(missing) not in {_normalize(n) for n in entry["needs"]}:
                problems.append(
                    f"{entry['name']}: import fails for lack of {missing!r}, not in needs {entry['needs']}"
                )
            continue
        except ImportError as exc:
            if all(find_spec(n.replace("-", "_")) is not None for n in entry["needs"]):
                problems.append(f"{entry['name']}: import fails ({exc}) although its needs are installed")
            continue
        cls = getattr(module, class_name)
        if not (inspect.isclass(cls) and issubclass(cls, BaseDetector)):
            problems.append(f"{entry['name']}: {entry['class_path']} is not a BaseDetector")
            continue
        runtime = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        added = set(entry.get("adapter_params", []))
        static = (
            [p["name"] for p in entry["params"] if p["name"] not in added]
            + entry.get("omitted_params", [])
            + entry.get("fit_time_params", [])
        )
        if sorted(runtime) != sorted(static):
            problems.append(f"{entry['name']}: signature {runtime} != catalog {static}")
    return problems


# ------------------------------------------------------------------ command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m adcore_pyod.generate", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--check", action="store_true", help="compare with the shipped catalog; exit 1 if stale"
    )
    parser.add_argument("--no-import", action="store_true", help="skip the cross-check that imports PyOD")
    parser.add_argument("--output", type=Path, default=CATALOG_PATH)
    args = parser.parse_args(argv)
    catalog = build_catalog()
    stale = stale_curation(catalog)
    if stale:
        print("curation.py names what PyOD no longer has:\n  " + "\n  ".join(stale), file=sys.stderr)
        return 1
    if not args.no_import:
        problems = cross_check(catalog)
        if problems:
            print("cross-check failed:\n  " + "\n  ".join(problems), file=sys.stderr)
            return 1
    text = render(catalog)
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else ""
        if current != text:
            diff = difflib.unified_diff(
                current.splitlines(), text.splitlines(), "shipped", "regenerated", lineterm=""
            )
            print("\n".join(list(diff)[:80]), file=sys.stderr)
            print(f"{args.output} is stale: run python -m adcore_pyod.generate", file=sys.stderr)
            return 1
        print(f"{args.output} matches PyOD {catalog['pyod_version']}")
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}: {len(catalog['detectors'])} detectors, {len(catalog['excluded'])} excluded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
