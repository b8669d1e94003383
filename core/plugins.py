"""A typed wrapper around pluggy's PluginManager with one method per hook.

Built-in plugins load exactly like third-party ones. Whatever a plugin does
wrong (fails to import, misspells a hook, raises inside a hook, registers the
wrong kind of object) disables that plugin and records why; the program keeps
running, because one broken extension must never take the console down in
front of a technician.

A plugin declares what it needs from the others (as Spyder's plugins do):
``REQUIRES`` names plugins it cannot work without, ``OPTIONAL`` plugins it
uses when they are there. A plugin whose required plugin is missing, blocked,
failed or itself disabled is disabled and reported, never fatal.
"""

from __future__ import annotations

import difflib
import enum
import importlib
import importlib.metadata
import logging
import os
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar

import pluggy

from core import hookspecs
from core.registrations import (
    AlertRuleTypeSpec,
    ApiClientSpec,
    BackendSpec,
    CliCommand,
    IdentityProviderSpec,
    PageSpec,
    SensorModelSpec,
    StatusWidgetSpec,
)

log = logging.getLogger(__name__)

DEFAULT_PLUGINS: tuple[str, ...] = (
    "plugins.local.plugin",
    "plugins.aws.plugin",
    "plugins.devices.plugin",
    "plugins.alerts.plugin",
    "plugins.firmware.plugin",
    "plugins.analytics.plugin",
    "plugins.audit.plugin",
    "plugins.users.plugin",
    "plugins.api.plugin",
    "simulator.plugin",
)

DISABLE_ENV = "SMARTIOT_DISABLE_PLUGINS"
ENTRY_POINTS_ENV = "SMARTIOT_ENTRY_POINTS"

T = TypeVar("T")


class PluginStatus(enum.StrEnum):
    LOADED = "loaded"
    BLOCKED = "blocked"
    FAILED = "failed"
    DISABLED = "disabled"  # works, but a plugin it requires is not active


@dataclass
class PluginInfo:
    """What the Plugins dialog and ``smartiot plugins`` show for one plugin."""

    name: str
    source: str
    status: PluginStatus
    error: str = ""
    hooks: list[str] = field(default_factory=list)
    version: str = ""
    requires: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    @property
    def is_active(self) -> bool:
        return self.status is PluginStatus.LOADED


def _plugin_short_name(module_name: str) -> str:
    # "plugins.devices.plugin" -> "devices"; third-party names stay as given.
    parts = module_name.split(".")
    if len(parts) == 3 and parts[0] == "plugins" and parts[2] == "plugin":
        return parts[1]
    if len(parts) == 2 and parts[1] == "plugin":  # "simulator.plugin" -> "simulator"
        return parts[0]
    return module_name


def blocked_names(env: dict[str, str] | os._Environ[str] | None = None) -> frozenset[str]:
    raw = (env if env is not None else os.environ).get(DISABLE_ENV, "")
    return frozenset(name.strip() for name in raw.split(",") if name.strip())


class PluginManager:
    def __init__(
        self,
        *,
        builtins: Iterable[str] = DEFAULT_PLUGINS,
        entry_points: bool | None = None,
        blocked: Iterable[str] | None = None,
    ) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._known_hooks = frozenset(
            name for name in dir(hookspecs) if name.startswith("smartiot_")
        )
        self._infos: dict[str, PluginInfo] = {}
        self._blocked = frozenset(blocked) if blocked is not None else blocked_names()
        if entry_points is None:
            entry_points = os.environ.get(ENTRY_POINTS_ENV, "1") != "0"
        for module_name in builtins:
            self._load_module(_plugin_short_name(module_name), module_name, "built-in")
        if entry_points:
            self._load_entry_points()
        self._check_pending()
        self._check_requirements()

    # ------------------------------------------------------------------ loading
    def _load_entry_points(self) -> None:
        for ep in importlib.metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP):
            dist = ep.dist
            source = f"entry point {ep.value}" + (
                f" ({dist.metadata['Name']} {dist.version})" if dist is not None else ""
            )
            if ep.name in self._infos:
                self._infos[ep.name + " (duplicate)"] = PluginInfo(
                    ep.name, source, PluginStatus.FAILED,
                    f"a plugin named {ep.name!r} is already loaded from "
                    f"{self._infos[ep.name].source}",
                )
                continue
            if ep.name in self._blocked:
                self._infos[ep.name] = PluginInfo(
                    ep.name, source, PluginStatus.BLOCKED, f"blocked by {DISABLE_ENV}"
                )
                continue
            try:
                obj = ep.load()
            except Exception as exc:  # noqa: BLE001 - isolation is the point here
                self._fail(ep.name, source, f"import failed: {_describe(exc)}", exc)
                continue
            self._register(ep.name, obj, source, version=dist.version if dist else "")

    def _load_module(self, name: str, module_name: str, source: str) -> None:
        if name in self._blocked:
            self._infos[name] = PluginInfo(
                name, source, PluginStatus.BLOCKED, f"blocked by {DISABLE_ENV}"
            )
            return
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - isolation is the point here
            self._fail(name, source, f"import failed: {_describe(exc)}", exc)
            return
        self._register(name, module, source)

    def register(self, name: str, plugin: object, *, source: str = "registered in code") -> bool:
        """Register an already imported plugin object (tests, embedding apps)."""
        if name in self._blocked:
            self._infos[name] = PluginInfo(
                name, source, PluginStatus.BLOCKED, f"blocked by {DISABLE_ENV}"
            )
            return False
        ok = self._register(name, plugin, source)
        self._check_pending()
        self._check_requirements()
        return ok and self._infos[name].is_active

    def _register(self, name: str, plugin: object, source: str, *, version: str = "") -> bool:
        misspelled = self._misspelled_hooks(plugin)
        if misspelled:
            self._fail(name, source, "; ".join(misspelled))
            return False
        try:
            requires = _declared(plugin, "REQUIRES")
            optional = _declared(plugin, "OPTIONAL")
        except TypeError as exc:
            self._fail(name, source, str(exc))
            return False
        try:
            self._pm.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001 - isolation is the point here
            self._fail(name, source, f"rejected by the plugin system: {_describe(exc)}", exc)
            return False
        hooks = sorted(hc.name for hc in self._pm.get_hookcallers(plugin) or [])
        if not version and isinstance(plugin, ModuleType):
            version = str(getattr(plugin, "__version__", ""))
        self._infos[name] = PluginInfo(name, source, PluginStatus.LOADED, hooks=hooks,
                                       version=version, requires=requires, optional=optional)
        return True

    def _check_requirements(self) -> None:
        """Disable every active plugin a required plugin of which is not active,
        until none is left (a plugin disabled here disables those requiring it)."""
        changed = True
        while changed:
            changed = False
            for info in list(self._infos.values()):
                if not info.is_active:
                    continue
                for needed in info.requires:
                    why = self._why_inactive(needed)
                    if why:
                        self._disable(info.name, info.source,
                                      f"requires plugin {needed!r}, which {why}",
                                      status=PluginStatus.DISABLED)
                        changed = True
                        break

    def _why_inactive(self, name: str) -> str:
        info = self._infos.get(name)
        if info is None:
            return "is not installed"
        if info.status is PluginStatus.BLOCKED:
            return f"is blocked by {DISABLE_ENV}"
        if info.status is PluginStatus.FAILED:
            return f"failed ({info.error.splitlines()[0] if info.error else 'no reason given'})"
        if info.status is PluginStatus.DISABLED:
            return "is disabled itself"
        return ""

    def _misspelled_hooks(self, plugin: object) -> list[str]:
        """Names that look like hook implementations but match no spec.

        pluggy would only notice at ``check_pending`` and then fail the whole
        program; catching them per plugin lets us disable just the culprit."""
        problems = []
        for attr in dir(plugin):
            if not attr.startswith("smartiot_") or attr in self._known_hooks:
                continue
            candidate = getattr(plugin, attr, None)
            if not callable(candidate):
                continue
            close = difflib.get_close_matches(attr, self._known_hooks, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            problems.append(f"unknown hook {attr!r}{hint}")
        return problems

    def _check_pending(self) -> None:
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            plugin = exc.plugin
            name = self._pm.get_name(plugin) or repr(plugin)
            source = self._infos[name].source if name in self._infos else "unknown"
            self._disable(name, source, f"unknown hook: {exc}")
            self._check_pending()

    def _fail(self, name: str, source: str, error: str, exc: BaseException | None = None,
              *, status: PluginStatus = PluginStatus.FAILED) -> None:
        if exc is not None:
            log.warning("plugin %s disabled: %s\n%s", name, error,
                        "".join(traceback.format_exception(exc)))
        else:
            log.warning("plugin %s disabled: %s", name, error)
        old = self._infos.get(name)
        self._infos[name] = PluginInfo(
            name, source, status, error, version=old.version if old else "",
            requires=old.requires if old else (), optional=old.optional if old else ())

    def _disable(
        self, name: str, source: str, error: str, exc: BaseException | None = None,
        *, status: PluginStatus = PluginStatus.FAILED,
    ) -> None:
        plugin = self._pm.get_plugin(name)
        if plugin is not None:
            self._pm.unregister(plugin, name=name)
        self._fail(name, source, error, exc, status=status)
        if status is PluginStatus.FAILED:
            self._check_requirements()  # a plugin failing at run time takes its dependents

    # ------------------------------------------------------------------ calling
    def _call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation separately so one raising plugin is disabled
        and the others still run. Returns (plugin name, result) pairs in load order."""
        caller = getattr(self._pm.hook, hook_name)
        results: list[tuple[str, Any]] = []
        for impl in caller.get_hookimpls():  # registration (load) order
            name = impl.plugin_name
            if not self._pm.is_registered(impl.plugin):
                continue  # disabled meanwhile, with a plugin it requires
            try:
                results.append((name, impl.function(**{k: kwargs[k] for k in impl.argnames})))
            except Exception as exc:  # noqa: BLE001 - isolation is the point here
                info = self._infos.get(name)
                self._disable(name, info.source if info else "unknown",
                              f"{hook_name} raised {_describe(exc)}", exc)
        return results

    def _collect(self, hook_name: str, kind: type[T], key: Callable[[T], str]) -> list[T]:
        """Run a register hook; keep each plugin's records only if its hook finished
        and every record was of the right type, so no half-registered plugin remains."""
        collected: dict[str, T] = {}
        caller = getattr(self._pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            name = impl.plugin_name
            if not self._pm.is_registered(impl.plugin):
                continue  # disabled meanwhile, with a plugin it requires
            mine: list[T] = []

            def register(item: T, _mine: list[T] = mine, _name: str = name) -> None:
                if not isinstance(item, kind):
                    raise TypeError(
                        f"{hook_name} expects {kind.__name__} records, got "
                        f"{type(item).__name__}"
                    )
                _mine.append(item)

            try:
                impl.function(register=register)
            except Exception as exc:  # noqa: BLE001 - isolation is the point here
                info = self._infos.get(name)
                self._disable(name, info.source if info else "unknown",
                              f"{hook_name} raised {_describe(exc)}", exc)
                continue
            for item in mine:
                item_key = key(item)
                if item_key in collected:
                    self._infos[name].error = (
                        f"{kind.__name__} {item_key!r} is already registered by another plugin; "
                        "this one was ignored"
                    )
                    continue
                collected[item_key] = item
        return list(collected.values())

    def backends(self) -> dict[str, BackendSpec]:
        return {
            spec.name: spec
            for spec in self._collect("smartiot_register_backends", BackendSpec, lambda s: s.name)
        }

    def api_clients(self) -> dict[str, ApiClientSpec]:
        return {
            spec.name: spec
            for spec in self._collect("smartiot_register_api_clients", ApiClientSpec,
                                      lambda s: s.name)
        }

    def identity_providers(self) -> dict[str, IdentityProviderSpec]:
        return {
            spec.name: spec
            for spec in self._collect("smartiot_register_identity_providers",
                                      IdentityProviderSpec, lambda s: s.name)
        }

    def pages(self) -> list[PageSpec]:
        pages = self._collect("smartiot_register_pages", PageSpec, lambda s: s.page_id)
        return sorted(pages, key=lambda p: (p.order, p.title))

    def status_widgets(self) -> list[StatusWidgetSpec]:
        specs = self._collect(
            "smartiot_register_status_widgets", StatusWidgetSpec, lambda s: s.widget_id
        )
        return sorted(specs, key=lambda s: s.order)

    def alert_rule_types(self) -> dict[str, AlertRuleTypeSpec]:
        return {
            spec.type_name: spec
            for spec in self._collect(
                "smartiot_register_alert_rule_types", AlertRuleTypeSpec, lambda s: s.type_name
            )
        }

    def sensor_models(self) -> dict[str, SensorModelSpec]:
        return {
            spec.model_name: spec
            for spec in self._collect(
                "smartiot_register_sensor_models", SensorModelSpec, lambda s: s.model_name
            )
        }

    def cli_commands(self) -> dict[str, CliCommand]:
        return {
            cmd.name: cmd
            for cmd in self._collect("smartiot_register_cli_commands", CliCommand, lambda c: c.name)
        }

    def startup(self, context: Any) -> None:
        self._call_each("smartiot_startup", context=context)

    def shutdown(self, context: Any) -> None:
        self._call_each("smartiot_shutdown", context=context)

    # ------------------------------------------------------------------ reporting
    def infos(self) -> list[PluginInfo]:
        return sorted(self._infos.values(), key=lambda i: (i.status is not PluginStatus.LOADED,
                                                          i.name))

    def info(self, name: str) -> PluginInfo:
        return self._infos[name]

    def failures(self) -> list[PluginInfo]:
        return [i for i in self._infos.values() if i.status is PluginStatus.FAILED]

    def hook_names(self) -> frozenset[str]:
        return self._known_hooks


def _declared(plugin: object, attribute: str) -> tuple[str, ...]:
    """A plugin's REQUIRES or OPTIONAL: plugin names, as a tuple or list of str."""
    value = getattr(plugin, attribute, ())
    if isinstance(value, str) or not isinstance(value, tuple | list) or not all(
            isinstance(item, str) and item for item in value):
        raise TypeError(f"{attribute} must be a tuple of plugin names, e.g. ('alerts',), "
                        f"got {value!r}")
    return tuple(value)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
