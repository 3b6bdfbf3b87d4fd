"""Read PyOD's source without importing it: detector classes, constructor signatures, imports.

The catalog generator works from the source (``ast``) rather than from imported classes so
that its output does not depend on which optional packages happen to be installed: a
module that imports torch is described the same way whether torch is there or not. The
generator then cross-checks this static view against the imported classes where it can.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


@dataclass
class Param:
    """One constructor parameter as written in the source."""

    name: str
    default: Any = ...  # ... = required; a Python literal otherwise
    default_source: str | None = None  # set when the default is not a literal (``np.inf``)


@dataclass
class ClassInfo:
    """A class defined in a ``pyod.models`` module."""

    module: str
    name: str
    bases: list[str]
    docstring: str
    params: list[Param] | None  # None: no __init__ of its own
    has_var_kwargs: bool = False
    defines_fit: bool = False
    fit_needs_y: bool = False
    abstract: bool = False

    @property
    def class_path(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass
class ModuleInfo:
    """A parsed module: its classes and its module-level imports."""

    name: str
    path: Path
    is_package: bool
    tree: ast.Module
    classes: dict[str, ClassInfo] = field(default_factory=dict)
    imported_names: dict[str, str] = field(default_factory=dict)  # local name -> "module.attr"


def pyod_root() -> Path:
    """The installed ``pyod`` package folder, found without importing PyOD."""
    spec = importlib.util.find_spec("pyod")
    if spec is None or spec.origin is None:
        raise RuntimeError("PyOD is not installed: pip install pyod")
    return Path(spec.origin).parent


class SourceIndex:
    """Parsed ``pyod.*`` modules, loaded on demand and cached."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or pyod_root()
        self._modules: dict[str, ModuleInfo | None] = {}

    # ------------------------------------------------------------- modules
    def model_modules(self) -> list[str]:
        """Every module directly under ``pyod.models``, sorted."""
        folder = self.root / "models"
        return sorted(f"pyod.models.{p.stem}" for p in folder.glob("*.py") if p.stem != "__init__")

    def path_of(self, module: str) -> tuple[Path, bool] | None:
        parts = module.split(".")
        if parts[0] != "pyod":
            return None
        base = self.root.joinpath(*parts[1:])
        if (base / "__init__.py").is_file():
            return base / "__init__.py", True
        if base.with_suffix(".py").is_file():
            return base.with_suffix(".py"), False
        return None

    def module(self, name: str) -> ModuleInfo | None:
        if name not in self._modules:
            found = self.path_of(name)
            if found is None:
                self._modules[name] = None
            else:
                path, is_package = found
                tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
                info = ModuleInfo(name, path, is_package, tree)
                _read_module(info)
                self._modules[name] = info
        return self._modules[name]

    # ------------------------------------------------------------- classes
    def find_class(self, module: str, name: str) -> ClassInfo | None:
        """A class by the name it has in ``module``, following ``from x import Name``."""
        info = self.module(module)
        if info is None:
            return None
        if name in info.classes:
            return info.classes[name]
        target = info.imported_names.get(name)
        if target:
            source_module, _, source_name = target.rpartition(".")
            return self.find_class(source_module, source_name)
        return None

    def base_chain(self, cls: ClassInfo) -> list[ClassInfo]:
        """``cls`` and its ancestors that live in PyOD, nearest first."""
        chain, todo, seen = [], [cls], set()
        while todo:
            current = todo.pop(0)
            if current.class_path in seen:
                continue
            seen.add(current.class_path)
            chain.append(current)
            for base in current.bases:
                found = self.find_class(current.module, base.split(".")[-1])
                if found is not None:
                    todo.append(found)
        return chain

    def is_detector(self, cls: ClassInfo) -> bool:
        """Whether ``cls`` derives from ``pyod.models.base.BaseDetector``."""
        return any(c.class_path == "pyod.models.base.BaseDetector" for c in self.base_chain(cls)[1:])

    def constructor(self, cls: ClassInfo) -> tuple[list[Param], bool]:
        """Parameters of the nearest ``__init__`` in the class chain, and whether it takes **kwargs."""
        for current in self.base_chain(cls):
            if current.params is not None:
                return current.params, current.has_var_kwargs
        return [], False

    def fit_needs_y(self, cls: ClassInfo) -> bool:
        """Whether the nearest ``fit`` in the class chain requires ``y`` (a supervised detector)."""
        for current in self.base_chain(cls):
            if current.defines_fit:
                return current.fit_needs_y
        return False

    # ------------------------------------------------------------- imports
    def external_imports(self, module: str) -> set[str]:
        """Top-level names of non-PyOD packages that importing ``module`` requires.

        Follows PyOD-internal imports (and the ``__init__`` of every parent package).
        Imports inside functions are lazy and ignored; an import inside ``try`` whose
        ``except ImportError`` swallows the error is optional and ignored too.
        """
        found: set[str] = set()
        todo, seen = [module], set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            parts = name.split(".")
            todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages run first
            info = self.module(name)
            if info is None:
                continue
            for target in _required_imports(info):
                if target.split(".")[0] == "pyod":
                    todo.append(target)
                    if self.path_of(target) is None:  # "from pyod.x import name": name is not a module
                        todo.append(target.rpartition(".")[0])
                else:
                    found.add(target.split(".")[0])
        return {n for n in found if n not in sys.stdlib_module_names and n != "__future__"}


def _literal(node: ast.expr) -> tuple[Any, str | None]:
    try:
        return ast.literal_eval(node), None
    except (ValueError, SyntaxError, TypeError):
        return None, ast.unparse(node)


def _read_function_params(fn: ast.FunctionDef) -> tuple[list[Param], bool]:
    args = fn.args
    positional = args.posonlyargs + args.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    params: list[Param] = []
    pairs = [*zip(positional, defaults, strict=True), *zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    for arg, default in pairs:
        if arg.arg == "self":
            continue
        if default is None:
            params.append(Param(arg.arg))
        else:
            value, source = _literal(default)
            params.append(Param(arg.arg, value, source))
    return params, args.kwarg is not None


def _is_abstract(node: ast.ClassDef) -> bool:
    for item in node.body:
        if isinstance(item, ast.FunctionDef):
            for deco in item.decorator_list:
                if (isinstance(deco, ast.Name) and deco.id == "abstractmethod") or (
                    isinstance(deco, ast.Attribute) and deco.attr == "abstractmethod"
                ):
                    return True
    return False


def _read_module(info: ModuleInfo) -> None:
    package = info.name if info.is_package else info.name.rpartition(".")[0]
    for node in info.tree.body:
        if isinstance(node, ast.ImportFrom):
            source = _resolve_from(node, package)
            for alias in node.names:
                info.imported_names[alias.asname or alias.name] = f"{source}.{alias.name}"
        elif isinstance(node, ast.ClassDef):
            params: list[Param] | None = None
            var_kwargs = defines_fit = fit_needs_y = False
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    params, var_kwargs = _read_function_params(item)
                if isinstance(item, ast.FunctionDef) and item.name == "fit":
                    defines_fit = True
                    fit_params, _ = _read_function_params(item)
                    fit_needs_y = any(p.name == "y" and p.default is ... for p in fit_params)
            info.classes[node.name] = ClassInfo(
                module=info.name,
                name=node.name,
                bases=[ast.unparse(b) for b in node.bases],
                docstring=ast.get_docstring(node) or "",
                params=params,
                has_var_kwargs=var_kwargs,
                defines_fit=defines_fit,
                fit_needs_y=fit_needs_y,
                abstract=_is_abstract(node),
            )


def _resolve_from(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = parts[: len(parts) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _swallows_import_error(node: ast.Try) -> bool:
    """True when some handler catches ImportError and none re-raises."""
    catches = False
    for handler in node.handlers:
        names = []
        if handler.type is None:
            names = ["BaseException"]
        elif isinstance(handler.type, ast.Tuple):
            names = [ast.unparse(e) for e in handler.type.elts]
        else:
            names = [ast.unparse(handler.type)]
        if set(names) & _IMPORT_ERRORS:
            catches = True
            if any(isinstance(n, ast.Raise) for n in ast.walk(handler)):
                return False
    return catches


def _required_imports(info: ModuleInfo) -> list[str]:
    """Modules imported at module level, skipping optional (guarded) and TYPE_CHECKING imports."""
    package = info.name if info.is_package else info.name.rpartition(".")[0]
    out: list[str] = []

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                out.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                source = _resolve_from(node, package)
                out.append(source)
                out.extend(f"{source}.{alias.name}" for alias in node.names if alias.name != "*")
            elif isinstance(node, ast.Try):
                if not _swallows_import_error(node):
                    visit(node.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
                visit(node.body)
                visit(node.orelse)

    visit(info.tree.body)
    return out
