"""The plugin manager isolates every kind of plugin failure."""

import sys
import types

from core.hookspecs import hookimpl
from core.plugins import PluginManager, PluginStatus
from core.registrations import CliCommand, PageSpec


class GoodPlugin:
    @hookimpl
    def smartiot_register_pages(self, register):
        register(PageSpec("good", "Good", factory=lambda ctx: None, order=5))


class RaisingPlugin:
    @hookimpl
    def smartiot_register_pages(self, register):
        register(PageSpec("half", "Half", factory=lambda ctx: None))
        raise RuntimeError("database exploded")


class WrongTypePlugin:
    @hookimpl
    def smartiot_register_pages(self, register):
        register({"page_id": "dict"})


class MisspelledPlugin:
    @hookimpl
    def smartiot_register_page(self, register):  # missing "s"
        register(PageSpec("typo", "Typo", factory=lambda ctx: None))


class BadArgsPlugin:
    @hookimpl
    def smartiot_register_pages(self, register, extra):
        pass


def manager(*plugins):
    pm = PluginManager(builtins=(), entry_points=False, blocked=())
    for name, plugin in plugins:
        pm.register(name, plugin)
    return pm


def test_raising_plugin_is_disabled_and_leaves_nothing_half_registered():
    pm = manager(("good", GoodPlugin()), ("raising", RaisingPlugin()))
    assert [p.page_id for p in pm.pages()] == ["good"]
    info = pm.info("raising")
    assert info.status is PluginStatus.FAILED
    assert "smartiot_register_pages raised RuntimeError: database exploded" in info.error
    # Once disabled it stays out of later hook calls too.
    assert [p.page_id for p in pm.pages()] == ["good"]


def test_wrong_record_type_disables_plugin():
    pm = manager(("wrong", WrongTypePlugin()), ("good", GoodPlugin()))
    assert [p.page_id for p in pm.pages()] == ["good"]
    assert "expects PageSpec records, got dict" in pm.info("wrong").error


def test_misspelled_hook_is_caught_at_startup_with_suggestion():
    pm = manager(("typo", MisspelledPlugin()), ("good", GoodPlugin()))
    info = pm.info("typo")
    assert info.status is PluginStatus.FAILED
    assert "unknown hook 'smartiot_register_page'" in info.error
    assert "did you mean smartiot_register_pages" in info.error
    assert [p.page_id for p in pm.pages()] == ["good"]


def test_hook_with_unknown_argument_is_rejected():
    pm = manager(("badargs", BadArgsPlugin()))
    assert pm.info("badargs").status is PluginStatus.FAILED
    assert "extra" in pm.info("badargs").error


def test_blocking_by_environment(monkeypatch):
    monkeypatch.setenv("SMARTIOT_DISABLE_PLUGINS", "good, other")
    pm = PluginManager(builtins=(), entry_points=False)
    pm.register("good", GoodPlugin())
    assert pm.info("good").status is PluginStatus.BLOCKED
    assert pm.pages() == []


def test_builtin_module_that_fails_to_import_is_reported(monkeypatch):
    module = types.ModuleType("broken_builtin_for_test")
    monkeypatch.setitem(sys.modules, "fine_builtin_for_test", module)
    module.smartiot_register_cli_commands = hookimpl(
        lambda register: register(CliCommand("hello", "say hi", lambda p: None, lambda a, c: 0))
    )
    pm = PluginManager(
        builtins=("fine_builtin_for_test", "no_such_module_for_test.plugin"),
        entry_points=False,
        blocked=(),
    )
    failed = pm.info("no_such_module_for_test")
    assert failed.status is PluginStatus.FAILED
    assert "import failed: ModuleNotFoundError" in failed.error
    assert list(pm.cli_commands()) == ["hello"]


def test_duplicate_registration_keeps_first_and_reports_second():
    class Again(GoodPlugin):
        pass

    pm = manager(("first", GoodPlugin()), ("second", Again()))
    assert len(pm.pages()) == 1
    assert "already registered" in pm.info("second").error


def _module(name, *, requires=None, optional=None, page=None):
    """A plugin module as a third party writes it: hooks plus REQUIRES/OPTIONAL."""
    module = types.ModuleType(name)
    if requires is not None:
        module.REQUIRES = requires
    if optional is not None:
        module.OPTIONAL = optional
    if page is not None:
        @hookimpl
        def smartiot_register_pages(register):
            register(PageSpec(page, page.title(), factory=lambda ctx: None))

        module.smartiot_register_pages = smartiot_register_pages
    return module


def test_a_plugin_whose_required_plugin_is_missing_or_blocked_is_disabled_not_fatal(
        monkeypatch):
    modules = {
        "weather_core": _module("weather_core", page="stations"),
        "weather_maps": _module("weather_maps", requires=("weather_core",), page="maps"),
        "weather_radar": _module("weather_radar", requires=("weather_maps",), page="radar"),
        "weather_extra": _module("weather_extra", requires=("not_installed",), page="extra"),
        "weather_tips": _module("weather_tips", optional=("weather_core", "nope"), page="tips"),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)

    pm = PluginManager(builtins=tuple(modules), entry_points=False, blocked=("weather_core",))

    assert pm.info("weather_core").status is PluginStatus.BLOCKED
    maps, radar, extra = (pm.info(n) for n in ("weather_maps", "weather_radar", "weather_extra"))
    assert maps.status is radar.status is extra.status is PluginStatus.DISABLED
    assert maps.error == ("requires plugin 'weather_core', which is blocked by "
                          "SMARTIOT_DISABLE_PLUGINS")
    assert radar.error == "requires plugin 'weather_maps', which is disabled itself"
    assert extra.error == "requires plugin 'not_installed', which is not installed"
    assert maps.requires == ("weather_core",)
    tips = pm.info("weather_tips")  # optional plugins may be absent
    assert tips.status is PluginStatus.LOADED and tips.optional == ("weather_core", "nope")
    assert [p.page_id for p in pm.pages()] == ["tips"]  # the disabled ones register nothing


def test_a_plugin_failing_at_run_time_disables_the_plugins_requiring_it(monkeypatch):
    class Core:
        @hookimpl
        def smartiot_register_pages(self, register):
            raise RuntimeError("database exploded")

    class Maps:
        REQUIRES = ("core",)

        @hookimpl
        def smartiot_register_pages(self, register):
            register(PageSpec("maps", "Maps", factory=lambda ctx: None))

    pm = manager(("core", Core()), ("maps", Maps()))
    assert pm.info("maps").is_active
    assert pm.pages() == []  # core raises; maps, requiring it, is disabled before it runs
    assert pm.info("core").status is PluginStatus.FAILED
    assert pm.info("maps").status is PluginStatus.DISABLED
    assert pm.info("maps").error == (
        "requires plugin 'core', which failed (smartiot_register_pages raised RuntimeError: "
        "database exploded)")


def test_a_malformed_declaration_is_reported():
    class Sloppy:
        REQUIRES = "alerts"  # a string, not a tuple of names

    pm = manager(("sloppy", Sloppy()))
    assert pm.info("sloppy").status is PluginStatus.FAILED
    assert "REQUIRES must be a tuple of plugin names" in pm.info("sloppy").error


def test_the_builtin_plugins_declare_what_they_use():
    pm = PluginManager(entry_points=False, blocked=("alerts",))
    analytics = pm.info("analytics")
    assert analytics.is_active and analytics.optional == ("alerts", "devices")
    assert pm.info("local").optional == ("alerts",)
