"""The plugin host: entry points, per-plugin registries, broken-plugin reports, name resolution.

Plugins are found through the ``adcore`` entry-point group and registered with pluggy;
the core's own features are an ordinary plugin named ``core``, registered the same way
(after the entry points, like llm). Unlike pluggy's ``load_setuptools_entrypoints``, every
step that runs plugin code (import, validation, each hook call, each ``register`` call)
is guarded per plugin: a broken plugin is reported by ``adcore plugins`` and everything
else keeps working. ``ADCORE_PLUGINS_STRICT=1`` turns those reports into errors while
developing a plugin.

Environment switches (read when the host loads):

- ``ADCORE_DISABLE_PLUGIN_AUTOLOAD=1``: load no entry points, only the built-ins.
- ``ADCORE_PLUGINS=a,b``: load only these entry-point plugins.
- ``ADCORE_DISABLE_PLUGINS=a,b``: skip these entry-point plugins.
- ``ADCORE_PLUGINS_STRICT=1``: raise ``PluginError`` instead of reporting.
- ``ADCORE_PREFER=sklearn,pyod``: which plugin wins a bare name provided by several.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from adcore import hookspecs
from adcore.errors import MissingDependencyError, PluginError, UnknownAlgorithmError

CORE_PLUGIN = "core"
PORTS = {
    "register_detectors": "detector",
    "register_storage": "storage",
    "register_monitors": "monitor",
    "register_messaging": "messaging",
    "register_event_subscribers": "subscriber",
}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_TRUE = {"1", "true", "yes", "on"}


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def _env_list(name: str) -> list[str] | None:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


# pip names whose import name is not the pip name with "-" read as "_"
_IMPORT_NAMES = {"scikit-learn": "sklearn", "pillow": "PIL", "pyyaml": "yaml", "opencv-python": "cv2"}


def _importable(requirement: str) -> bool:
    """Whether a ``needs`` entry (a pip name such as ``torch`` or ``psycopg[binary]``) is importable.

    Checked with ``find_spec``, which imports nothing. The import name is the pip name with
    ``-`` read as ``_`` (or a well-known exception such as scikit-learn -> sklearn).
    """
    import importlib.util

    name = re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0]
    module = _IMPORT_NAMES.get(name.lower(), name.replace("-", "_"))
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def resolve_reference(reference: str) -> Any:
    """Import ``"package.module:attr"`` (the lazy form of a factory)."""
    module_name, _, attr = reference.partition(":")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


@dataclass
class Registration:
    """One thing a plugin registered: a detector, store backend, monitor or stream endpoint."""

    kind: str
    plugin: str
    name: str
    factory: Any
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def qualified_name(self) -> str:
        return f"{self.plugin}:{self.name}"

    @property
    def summary(self) -> str:
        return str(self.metadata.get("summary") or "")

    @property
    def needs(self) -> tuple[str, ...]:
        return tuple(self.metadata.get("needs") or ())

    def missing_needs(self) -> list[str]:
        """The declared ``needs`` that cannot be imported here (found without importing them)."""
        return [n for n in self.needs if not _importable(n)]

    def load(self) -> Callable[..., Any]:
        """The factory, importing it now if it was registered lazily.

        A missing optional dependency becomes a ``MissingDependencyError`` naming the
        package to install rather than a bare ``ModuleNotFoundError``. Declared ``needs``
        are checked first: a library may fail on a missing package with a plain
        ``ImportError``, or only later, in ``fit``.
        """
        missing = self.missing_needs()
        if missing:
            raise MissingDependencyError(
                f"{self.qualified_name} needs {', '.join(missing)}, not installed: "
                f"pip install {' '.join(missing)}"
            )
        if not isinstance(self.factory, str):
            return self.factory
        try:
            return resolve_reference(self.factory)
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").split(".")[0]
            needs = [n for n in self.needs if n.split("[")[0].replace("-", "_") == missing] or [missing]
            raise MissingDependencyError(
                f"{self.qualified_name} needs the package {needs[0]!r}, which is not installed: "
                f"pip install {needs[0]}"
            ) from exc


@dataclass
class PluginInfo:
    """What ``adcore plugins`` reports for one plugin."""

    name: str
    version: str | None
    module: str
    builtin: bool = False
    hooks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    distribution: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "module": self.module,
            "distribution": self.distribution,
            "builtin": self.builtin,
            "hooks": list(self.hooks),
            "ok": self.ok,
            "errors": list(self.errors),
        }


class PluginHost:
    """Loads plugins once and answers "what is registered, and by whom?".

    Registries are collected lazily per port, so ``adcore algos`` never calls a storage
    hook and listing never builds a detector.
    """

    def __init__(
        self,
        *,
        autoload: bool | None = None,
        only: list[str] | None = None,
        disabled: list[str] | None = None,
        strict: bool | None = None,
        prefer: list[str] | None = None,
        builtins: bool = True,
    ) -> None:
        self.autoload = (not _env_flag("ADCORE_DISABLE_PLUGIN_AUTOLOAD")) if autoload is None else autoload
        self.only = _env_list("ADCORE_PLUGINS") if only is None else only
        self.disabled = set((_env_list("ADCORE_DISABLE_PLUGINS") or []) if disabled is None else disabled)
        self.strict = _env_flag("ADCORE_PLUGINS_STRICT") if strict is None else strict
        self.prefer = (_env_list("ADCORE_PREFER") or []) if prefer is None else prefer
        self.builtins = builtins
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self._infos: dict[str, PluginInfo] = {}
        self._registries: dict[str, dict[str, Registration]] = {}
        self._loaded = False
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ loading
    def load(self) -> PluginHost:
        """Import entry-point plugins, then the built-ins. Idempotent."""
        with self._lock:
            if self._loaded:
                return self
            self._loaded = True
            if self.autoload:
                self._load_entry_points()
            if self.builtins:
                from adcore.builtin import plugin as builtin_plugin

                self.add_plugin(builtin_plugin, CORE_PLUGIN, builtin=True)
            return self

    def _load_entry_points(self) -> None:
        from importlib.metadata import entry_points

        seen: dict[str, str] = {}
        for ep in sorted(entry_points(group=hookspecs.ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            version = dist.version if dist is not None else None
            if self.only is not None and ep.name not in self.only:
                continue
            if ep.name in self.disabled:
                continue
            if ep.name in seen:
                if seen[ep.name] == ep.value:
                    continue  # the same distribution found twice on sys.path
                self._report(
                    PluginInfo(ep.name, version, ep.value, distribution=dist_name),
                    f"plugin name {ep.name!r} is already used by {seen[ep.name]!r}; rename one entry point",
                )
                continue
            seen[ep.name] = ep.value
            if ep.name == CORE_PLUGIN:
                self._report(
                    PluginInfo(ep.name, version, ep.value, distribution=dist_name),
                    "the plugin name 'core' is reserved for adcore's built-ins",
                )
                continue
            try:
                module = ep.load()
            except Exception as exc:  # any import-time failure is the plugin's, not ours
                self._report(
                    PluginInfo(ep.name, version, ep.value, distribution=dist_name),
                    f"failed to import {ep.value}: {type(exc).__name__}: {exc}",
                )
                continue
            self.add_plugin(module, ep.name, version=version, distribution=dist_name)

    def add_plugin(
        self,
        plugin: Any,
        name: str,
        *,
        version: str | None = None,
        builtin: bool = False,
        distribution: str | None = None,
    ) -> PluginInfo:
        """Register a plugin object (module or instance) under ``name``.

        Public so tests and notebooks can add a plugin without packaging it.
        """
        with self._lock:
            module_name = getattr(plugin, "__name__", type(plugin).__name__)
            info = PluginInfo(name, version, module_name, builtin=builtin, distribution=distribution)
            unknown = self._unknown_hooks(plugin)
            if unknown:
                return self._report(info, unknown)
            try:
                self.pm.register(plugin, name=name)
            except Exception as exc:  # PluginValidationError: bad signature, duplicate name
                return self._report(info, f"invalid plugin: {exc}")
            info.hooks = sorted(impl.name for impl in self.pm.get_hookcallers(plugin) or [])
            self._infos[name] = info
            self._registries.clear()  # collected again on next use
            return info

    def _unknown_hooks(self, plugin: Any) -> str | None:
        """Catch a misspelled hook name (pluggy's check_pending, per plugin)."""
        known = [n for n in dir(hookspecs) if n.startswith("register_")]
        for attr in dir(plugin):
            if self.pm.parse_hookimpl_opts(plugin, attr) is None:
                continue
            if attr not in known:
                close = difflib.get_close_matches(attr, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                return f"unknown hook {attr!r}{hint}; known hooks: {', '.join(known)}"
        return None

    def _report(self, info: PluginInfo, error: str) -> PluginInfo:
        """Record ``error`` against ``info`` (or raise it in strict mode).

        A plugin that never got registered (import failure, name clash) is kept under a
        key of its own, so it can't hide, or be hidden by, a working plugin of that name.
        """
        if self.strict:
            raise PluginError(f"plugin {info.name!r}: {error}")
        key = info.name
        existing = self._infos.get(key)
        clashes = existing is not None and existing is not info and existing.module != info.module
        if clashes or (info.name == CORE_PLUGIN and not info.builtin):
            key = f"{info.name} ({info.module})"
        target = self._infos.setdefault(key, info)
        target.errors.append(error)
        return target

    # ---------------------------------------------------------------- queries
    def plugins(self) -> list[PluginInfo]:
        """Every plugin found, the broken ones included; built-ins last."""
        self.load()
        self.registry("detector")  # a hook that raises is only known once it has been called
        return sorted(self._infos.values(), key=lambda i: (i.builtin, i.name))

    def registry(self, kind: str) -> dict[str, Registration]:
        """All registrations of one port, keyed by qualified name (``plugin:name``)."""
        self.load()
        with self._lock:
            if kind not in self._registries:
                hook_name = next(h for h, k in PORTS.items() if k == kind)
                self._registries[kind] = self._collect(hook_name, kind)
            return self._registries[kind]

    def _collect(self, hook_name: str, kind: str) -> dict[str, Registration]:
        found: dict[str, Registration] = {}
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            plugin_name = impl.plugin_name
            info = self._infos.get(plugin_name)
            staged: dict[str, Registration] = {}
            register = self._stager(plugin_name, kind, staged)
            try:
                impl.function(*[{"register": register}[a] for a in impl.argnames])
            except Exception as exc:
                message = f"{hook_name} raised {type(exc).__name__}: {exc}"
                if info is not None and message not in info.errors:
                    self._report(info, message)
                continue  # a hook that fails half-way contributes nothing
            found.update(staged)
        return found

    def _stager(self, plugin: str, kind: str, staged: dict[str, Registration]) -> Callable[..., None]:
        """The ``register`` callback handed to one plugin's hook: validates, then stages."""

        def register(name: Any, factory: Any = None, /, **metadata: Any) -> None:
            entry = self._validate_entry(plugin, kind, name, factory, metadata, staged)
            staged[entry.qualified_name] = entry

        return register

    def _validate_entry(
        self,
        plugin: str,
        kind: str,
        name: Any,
        factory: Any,
        metadata: dict[str, Any],
        staged: dict[str, Registration],
    ) -> Registration:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ValueError(f"malformed {kind} name {name!r}: use letters, digits, '_', '-', '.'")
        if isinstance(factory, str):
            if ":" not in factory:
                raise ValueError(
                    f"{kind} {name!r}: a lazy factory must look like 'module:attr', got {factory!r}"
                )
        elif not callable(factory):
            raise ValueError(f"{kind} {name!r}: factory must be callable or 'module:attr', got {factory!r}")
        summary = metadata.get("summary", "")
        if not isinstance(summary, str):
            raise ValueError(f"{kind} {name!r}: summary must be a string")
        entry = Registration(kind, plugin, name, factory, dict(metadata))
        if entry.qualified_name in staged:
            raise ValueError(f"{kind} {name!r} registered twice")
        return entry

    # ------------------------------------------------------- name resolution
    def plugin_order(self) -> list[str]:
        """Which plugin wins a bare name: core, then ADCORE_PREFER, then alphabetical."""
        names = sorted({r.plugin for r in self.registry("detector").values()})
        head = [CORE_PLUGIN] + [p for p in self.prefer if p != CORE_PLUGIN]
        return [p for p in head if p in names] + [p for p in names if p not in head]

    def bare_name_owners(self) -> dict[str, str]:
        """Map each bare detector name to the qualified name it resolves to."""
        order = {p: i for i, p in enumerate(self.plugin_order())}
        owners: dict[str, str] = {}
        for reg in sorted(self.registry("detector").values(), key=lambda r: order[r.plugin]):
            owners.setdefault(reg.name, reg.qualified_name)
        return owners

    def resolve(self, kind: str, name: str) -> Registration:
        """Find a registration by ``plugin:name`` or by bare ``name``."""
        registry = self.registry(kind)
        if name in registry:
            return registry[name]
        if ":" not in name:
            if kind == "detector":
                owner = self.bare_name_owners().get(name)
                if owner:
                    return registry[owner]
            else:
                matches = [r for r in registry.values() if r.name == name]
                if matches:
                    return sorted(matches, key=lambda r: (r.plugin != CORE_PLUGIN, r.plugin))[0]
        candidates = sorted(set(registry) | {r.name for r in registry.values()})
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
        label = "algorithm" if kind == "detector" else kind
        hint = (
            f"; did you mean {', '.join(close)}?"
            if close
            else "; run 'adcore algos' to list them"
            if kind == "detector"
            else ""
        )
        raise UnknownAlgorithmError(f"unknown {label} {name!r}{hint}")

    def add_commands(self, cli: Any) -> None:
        """Let plugins add CLI commands; a failing plugin is reported, not fatal."""
        self.load()
        for impl in self.pm.hook.register_commands.get_hookimpls():
            try:
                impl.function(*[{"cli": cli}[a] for a in impl.argnames])
            except Exception as exc:
                info = self._infos.get(impl.plugin_name)
                if info is not None:
                    self._report(info, f"register_commands raised {type(exc).__name__}: {exc}")

    def add_routes(self, make_router: Callable[[], Any], include: Callable[[Any], None]) -> None:
        """Let plugins add HTTP routes; a failing plugin is reported, not fatal.

        Each plugin fills a router of its own from ``make_router()``, which is handed to
        ``include`` only when the hook returns: one that raises half-way adds no route.
        """
        self.load()
        for impl in self.pm.hook.register_routes.get_hookimpls():
            router = make_router()
            try:
                impl.function(*[{"app": router}[a] for a in impl.argnames])
                include(router)
            except Exception as exc:
                info = self._infos.get(impl.plugin_name)
                if info is not None:
                    self._report(info, f"register_routes raised {type(exc).__name__}: {exc}")


_host: PluginHost | None = None
_host_lock = threading.Lock()


def get_host() -> PluginHost:
    """The process-wide plugin host, loaded on first use (never at import)."""
    global _host
    with _host_lock:
        if _host is None:
            _host = PluginHost().load()
        return _host


def set_host(host: PluginHost | None) -> None:
    """Replace the process-wide host (tests, embedding applications)."""
    global _host
    with _host_lock:
        _host = host
