from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel

from console.dialogs.plugins_dialog import PluginsDialog
from console.theme import current_colors
from core.hookspecs import hookimpl
from core.registrations import PageSpec, StatusWidgetSpec
from tests.gui.conftest import StatusPlugin, page, pages_plugin


class ExplodingPlugin:
    @hookimpl
    def smartiot_register_pages(self, register: Callable[[PageSpec], None]) -> None:
        register(page("half-registered", 1))
        raise ValueError("boom in register")


def test_plugin_raising_in_register_is_disabled_and_reported(make_context, make_window, qtbot):
    context = make_context(pages_plugin([page("fine", 5)]), ("exploding", ExplodingPlugin()))
    window = make_window(context)

    assert window.page_ids() == ["fine"]  # nothing of the broken plugin remains

    dialog = PluginsDialog(context, window)
    qtbot.addWidget(dialog)
    row = dialog.row_of("exploding")
    assert dialog.cell_text(row, "Status") == "failed"
    assert "boom in register" in dialog.cell_text(row, "Error")
    assert "smartiot_register_pages" in dialog.cell_text(row, "Error")
    assert not dialog.table.item(row, 1).icon().isNull()
    assert dialog.table.item(row, 0).foreground().color() == QColor(current_colors().danger)
    # the failed plugin is preselected so its full error is readable at once
    assert "ValueError: boom in register" in dialog.details.toPlainText()

    fine = dialog.row_of("test-pages")
    assert dialog.cell_text(fine, "Status") == "loaded"
    assert dialog.cell_text(fine, "Hooks") == "register_pages"
    dialog.table.selectRow(fine)
    assert "Status:  loaded" in dialog.details.toPlainText()


def test_status_widgets_appear_and_failures_are_isolated(make_context, make_window):
    def broken(ctx):
        raise OSError("no broker")

    plugin = StatusPlugin(
        StatusWidgetSpec("clock", lambda ctx: QLabel("12:00"), order=2),
        StatusWidgetSpec("conn", lambda ctx: QLabel("connected"), order=1),
        StatusWidgetSpec("hint", lambda ctx: QLabel("hint text"), permanent=False),
        StatusWidgetSpec("broken", broken),
        StatusWidgetSpec("notwidget", lambda ctx: "text"),
    )
    window = make_window(make_context(("status", plugin)), show=True)

    assert set(window.status_widgets) == {"clock", "conn", "hint"}
    texts = {w.text() for w in window.statusBar().findChildren(QLabel) if w.text()}
    assert {"12:00", "connected", "hint text"} <= texts
    for widget in window.status_widgets.values():
        assert widget.isVisible()
    marker = window.statusBar().findChild(QLabel, "StatusWidgetError-broken")
    assert marker is not None and "no broker" in marker.toolTip()
    assert window.statusBar().findChild(QLabel, "StatusWidgetError-notwidget") is not None
    # order: "conn" (1) is placed before "clock" (2) on the right
    conn, clock = window.status_widgets["conn"], window.status_widgets["clock"]
    assert conn.mapTo(window, conn.rect().topLeft()).x() < clock.mapTo(
        window, clock.rect().topLeft()).x()
