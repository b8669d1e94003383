from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QLabel

from console.fallback_pages import EMPTY_MESSAGE, ErrorPage
from console.shortcuts import assign_shortcuts
from core.registrations import PageSpec
from tests.gui.conftest import page, pages_plugin


def _nav_click(qtbot, window, page_id):
    item = window.nav.item_for(page_id)
    rect = window.nav.visualItemRect(item)
    qtbot.mouseClick(window.nav.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_navigation_lists_exactly_the_registered_pages_in_order(make_context, make_window):
    specs = [page("alpha", 30, tooltip="Alpha things"), page("beta", 10), page("gamma", 20)]
    window = make_window(make_context(pages_plugin(specs)))

    assert window.page_ids() == ["beta", "gamma", "alpha"]
    titles = [window.nav.item(row).text() for row in range(window.nav.count())]
    assert titles == ["Beta", "Gamma", "Alpha"]
    assert window.nav.item_for("alpha").toolTip().startswith("Alpha things")
    assert not window.nav.item_for("beta").icon().isNull()
    assert window.current_page_id() == "beta"  # the first page opens by default


def test_pages_are_built_lazily_and_clicking_switches(make_context, make_window, qtbot):
    calls: list[str] = []

    def counting(ctx):
        calls.append("gamma")
        return QLabel("gamma page")

    specs = [page("alpha", 1), page("gamma", 2, factory=counting)]
    window = make_window(make_context(pages_plugin(specs)), show=True)
    assert calls == []
    assert window.page_widget("gamma") is None

    _nav_click(qtbot, window, "gamma")
    assert window.current_page_id() == "gamma"
    assert calls == ["gamma"]
    assert window.pages.currentWidget().text() == "gamma page"

    _nav_click(qtbot, window, "alpha")
    _nav_click(qtbot, window, "gamma")
    assert calls == ["gamma"]  # built once, reused afterwards


def test_keyboard_shortcuts_switch_pages(make_context, make_window, qtbot):
    specs = [page("one", 1), page("two", 2), page("three", 3, shortcut="Ctrl+Shift+D")]
    window = make_window(make_context(pages_plugin(specs)), show=True)
    window.activateWindow()
    # waitActive() can return early on the offscreen platform; shortcuts need the
    # window to really be the active one.
    qtbot.waitUntil(window.isActiveWindow)

    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert window.current_page_id() == "two"
    qtbot.keyClick(window, Qt.Key.Key_D,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.current_page_id() == "three"
    qtbot.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert window.current_page_id() == "one"
    assert window.page_shortcuts == {"one": "Ctrl+1", "two": "Ctrl+2", "three": "Ctrl+Shift+D"}


def test_shortcut_assignment_never_reuses_a_key():
    specs = [PageSpec("a", "A", factory=lambda c: None, shortcut="Ctrl+2"),
             PageSpec("b", "B", factory=lambda c: None),
             PageSpec("c", "C", factory=lambda c: None, shortcut="Ctrl+Q"),
             PageSpec("d", "D", factory=lambda c: None)]
    result = assign_shortcuts(specs, reserved=("Ctrl+Q",))
    # positional keys stay positional: "b" is second, and Ctrl+2 belongs to "a"
    assert result == {"a": "Ctrl+2", "c": "Ctrl+3", "d": "Ctrl+4"}
    assert len(set(result.values())) == len(result)


def test_failing_page_shows_error_page_and_others_keep_working(make_context, make_window, qtbot):
    state = {"broken": True}

    def flaky(ctx):
        if state["broken"]:
            raise RuntimeError("database on fire")
        return QLabel("recovered")

    specs = [page("good", 1), page("flaky", 2, title="Flaky", factory=flaky),
             page("wrongtype", 3, factory=lambda ctx: 42)]
    window = make_window(make_context(pages_plugin(specs)), show=True)

    window.show_page("flaky")
    error_page = window.page_widget("flaky")
    assert isinstance(error_page, ErrorPage)
    assert "database on fire" in error_page.text()
    assert "Flaky" in error_page.title.text()
    assert __name__ in error_page.origin  # names where the factory lives

    window.show_page("wrongtype")
    wrong = window.page_widget("wrongtype")
    assert isinstance(wrong, ErrorPage)
    assert "expected a QWidget" in wrong.summary

    window.show_page("good")
    assert window.current_page_id() == "good"
    assert window.pages.currentWidget().text() == "good"

    state["broken"] = False
    window.show_page("flaky")
    qtbot.mouseClick(window.page_widget("flaky").retry_button, Qt.MouseButton.LeftButton)
    assert window.page_widget("flaky").text() == "recovered"
    assert window.current_page_id() == "flaky"


def test_empty_state_when_no_page_plugin_is_loaded(make_context, make_window):
    window = make_window(make_context())
    assert window.page_ids() == []
    assert window.current_page_id() is None
    assert window.pages.currentWidget() is window.pages.empty_state
    assert window.pages.empty_state.message.text() == EMPTY_MESSAGE


def test_set_badge(make_context, make_window):
    window = make_window(make_context(pages_plugin([page("alerts", 1)])))
    window.set_badge("alerts", "12")
    assert window.nav.badge("alerts") == "12"
    window.set_badge("alerts", "")
    assert window.nav.badge("alerts") == ""
    try:
        window.set_badge("nope", "1")
    except KeyError:
        pass
    else:
        raise AssertionError("unknown page id must raise")


def test_menus_and_their_shortcuts(make_context, make_window):
    window = make_window(make_context())
    menus = [action.text() for action in window.menuBar().actions()]
    assert menus == ["&File", "&View", "&Help"]
    assert window.settings_action.shortcut() == QKeySequence("Ctrl+,")
    assert window.quit_action.shortcut() == QKeySequence("Ctrl+Q")
    assert window.dark_theme_action.shortcut() == QKeySequence("Ctrl+Shift+T")
    assert window.full_screen_action.shortcut() == QKeySequence("F11")


def test_help_menu_opens_dialogs(make_context, make_window):
    from console.dialogs.about_dialog import AboutDialog
    from console.dialogs.plugins_dialog import PluginsDialog
    from console.dialogs.settings_dialog import SettingsDialog

    window = make_window(make_context(), show=True)
    for action, kind in ((window.plugins_action, PluginsDialog),
                         (window.about_action, AboutDialog),
                         (window.settings_action, SettingsDialog)):
        action.trigger()
        dialogs = window.findChildren(kind)
        assert len(dialogs) == 1 and dialogs[0].isVisible()
        dialogs[0].close()


def test_geometry_and_page_are_restored(make_context, make_window, qtbot, config_path):
    specs = [page("one", 1), page("two", 2), page("three", 3)]
    context = make_context(pages_plugin(specs))
    first = make_window(context, show=True)
    first.resize(700, 520)  # inside the 800x600 offscreen screen
    first.show_page("three")
    first.close()
    assert (config_path.parent / "window.ini").is_file()

    second = make_window(make_context(pages_plugin(specs)))
    assert (second.width(), second.height()) == (700, 520)
    assert second.current_page_id() == "three"
    assert second.nav.currentItem().text() == "Three"


def test_unknown_saved_page_falls_back_to_first(make_context, make_window):
    first = make_window(make_context(pages_plugin([page("gone", 1), page("kept", 2)])))
    first.show_page("gone")
    first.close()
    second = make_window(make_context(pages_plugin([page("kept", 2)])))
    assert second.current_page_id() == "kept"
