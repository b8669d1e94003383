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
