"""Theme switches with every page open, charts live and menus opening: the
console survives, and every chart takes the new theme's colours."""

from __future__ import annotations

import dataclasses

import pyqtgraph as pg
import pytest
import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication

from console.theme import DARK, LIGHT, ThemeColors, charts, current_theme
from core.context import AppContext
from core.model import Alert, Severity
from core.plugins import PluginManager
from simulator.api import RunningFleet
from simulator.faults import FaultPlan
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario

pytestmark = pytest.mark.gui


@pytest.fixture
def live_window(config, make_window, qtbot):
    profile = dataclasses.replace(config.profile, broker="embedded", demo_fleet=False)
    config = dataclasses.replace(config, profiles={**config.profiles, "local": profile},
                                 theme="dark")
    context = AppContext(config, PluginManager(entry_points=False, blocked=()))
    backend = context.backend
    fleet = RunningFleet(Scenario("theme", (DeviceGroup(
        "env", "environmental", 3, org="site", interval_s=0.5, id_prefix="thm"),),
        FaultPlan([])), on_broker=backend.broker,
        client_id_prefix=f"thm-{id(context)}-").start()
    window = make_window(context, show=True)
    yield window, backend
    fleet.stop()
    window.close()
    context.close()


def _style_address() -> int:
    return shiboken6.getCppPointer(QApplication.instance().style())[0]


def _name(colour: QColor | str) -> str:
    return QColor(colour).name()


def chart_problems(view: pg.GraphicsView, c: ThemeColors) -> list[str]:
    """What in one chart does not have the theme's colours."""
    where = f"{type(view).__name__} {view.objectName() or hex(id(view))}"
    out = []
    if _name(view.backgroundBrush().color()) != _name(c.plot_background):
        out.append(f"{where}: background {_name(view.backgroundBrush().color())}")
    for item in view.scene().items():
        if isinstance(item, pg.AxisItem):
            if _name(item.pen().color()) != _name(c.plot_foreground):
                out.append(f"{where}: axis {item.orientation} pen {_name(item.pen().color())}")
            if _name(item.textPen().color()) != _name(c.plot_foreground):
                out.append(f"{where}: axis {item.orientation} text "
                           f"{_name(item.textPen().color())}")
        elif isinstance(item, pg.LegendItem):
            brush = item.opts.get("brush")
            if brush is not None and _name(brush.color()) != _name(c.plot_background):
                out.append(f"{where}: legend backdrop {_name(brush.color())}")
            for _sample, label in item.items:
                if _name(label.opts["color"]) != _name(c.plot_foreground):
                    out.append(f"{where}: legend label {_name(label.opts['color'])}")
        elif isinstance(item, pg.LabelItem) and item.text:
            colour = item.opts.get("color")
            colour = pg.getConfigOption("foreground") if colour is None else colour
            other = DARK if c is LIGHT else LIGHT
            drawn = item.item.toHtml()
            if _name(pg.mkColor(colour)) in {_name(other.plot_foreground), _name(other.text),
                                             _name(other.secondary)} \
                    or _name(pg.mkColor(other.plot_foreground)) in drawn:
                out.append(f"{where}: title {item.text!r} in {_name(pg.mkColor(colour))}")
    return out


def test_theme_switches_with_every_page_and_stacked_live_charts(live_window, qtbot):
    window, backend = live_window
    app = QApplication.instance()
    qtbot.waitUntil(lambda: len(backend.registry.list()) == 3, timeout=30_000)
    backend.alerts.add(Alert("thm-00001", "demo-temperature-high", Severity.WARNING,
                             "Temperature high: 31.2 above 30", value=31.2))
    for page_id in window.page_ids():
        window.show_page(page_id)
        qtbot.wait(100)

    # every chart a person can open: device detail, alert detail, firmware, analytics
    window.show_page("devices")
    devices = window.page_widget("devices")
    qtbot.waitUntil(lambda: devices.model.rowCount() == 3, timeout=20_000)
    assert devices.show_device("thm-00001")
    window.show_page("alerts")
    alerts = window.page_widget("alerts")
    qtbot.waitUntil(lambda: alerts.model.rowCount() == 1, timeout=20_000)
    alerts.select_alerts([alerts.model.alert_at(0).alert_id])
    window.show_page("firmware")
    firmware = window.page_widget("firmware")
    firmware.tabs.setCurrentWidget(firmware.deployments)
    qtbot.wait(100)

    window.show_page("analytics")
    analytics = window.page_widget("analytics")
    analytics.tabs.setCurrentWidget(analytics.live)
    live = analytics.live
    qtbot.waitUntil(lambda: live.picker.devices.count() == 3, timeout=30_000)

    def metrics_known() -> bool:
        if len(live.picker.metric_names()) < 2:
            live.picker.select(["thm-00001", "thm-00002"])
            return False
        return True

    qtbot.waitUntil(metrics_known, timeout=30_000)
    live.picker.select(["thm-00001", "thm-00002"], live.picker.metric_names()[:4])
    qtbot.waitUntil(lambda: len(live.picker.selected_metrics()) >= 2, timeout=10_000)
    live.stacked.setChecked(True)
    qtbot.waitUntil(lambda: len(live.chart.plots) >= 2, timeout=10_000)
    frames = live.frames_drawn
    qtbot.waitUntil(lambda: live.frames_drawn > frames + 3, timeout=20_000)

    style = _style_address()
    bar = window.menuBar()
    help_action = next(a for a in bar.actions() if "Help" in a.text())
    for i in range(8):
        window.dark_theme_action.trigger()  # Ctrl+Shift+T
        expected = "light" if i % 2 == 0 else "dark"
        assert current_theme() == expected
        # ...followed at once by a click on Help, while the live charts draw
        help_action.menu().popup(bar.mapToGlobal(bar.actionGeometry(help_action).bottomLeft()))
        qtbot.wait(60)
        help_action.menu().hide()
        dialog = window.open_about_dialog() if i % 2 else window.open_plugins_dialog()
        qtbot.wait(60)
        dialog.close()
        if i == 3:
            live.stacked.setChecked(False)
            qtbot.wait(60)
            live.stacked.setChecked(True)
        # the style every widget paints with stays the same object
        assert _style_address() == style
    frames = live.frames_drawn
    qtbot.waitUntil(lambda: live.frames_drawn > frames + 3, timeout=20_000)

    # item 8: every chart in the window follows the theme, both ways
    for name, colours in (("light", LIGHT), ("dark", DARK), ("light", LIGHT)):
        window.set_theme(name, persist=False)
        views = charts(window)
        assert len(views) >= 6, [type(v).__name__ for v in views]
        problems = [p for v in views for p in chart_problems(v, colours)]
        assert problems == []
    assert app is QApplication.instance()
    assert window.isVisible()
    assert Qt  # keep the import for readers running this by hand
