"""Analytics as a new user meets it: a fleet that started minutes ago fills
the dashboard without a click on Refresh, the map shows devices that report
their position in telemetry, names on the type chart never overlap, Live and
History open on a device instead of blank axes, History starts on the range
that holds the data, and an empty chart says what to do."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pyqtgraph as pg
import pytest

from console.widgets.time_axis import TimeAxis
from core.context import AppContext
from core.model import Device, DeviceStatus, Reading
from core.model.timeutil import utcnow
from core.store import Store

pytestmark = pytest.mark.gui
WAIT = 20_000


def _fleet(store: Store, minutes: int = 9) -> None:
    """A fleet that started ``minutes`` ago: environmental sensors and power
    meters (no registered locations) and a tracker reporting lat/lon."""
    now = utcnow()
    devices = [Device(f"env-{i:05d}", device_type="environmental", status=DeviceStatus.ONLINE)
               for i in range(3)]
    devices += [Device(f"meter-{i:05d}", device_type="power_meter", status=DeviceStatus.ONLINE)
                for i in range(2)]
    devices += [Device("trk-00000", device_type="tracker", status=DeviceStatus.ONLINE),
                Device("trk-00001", device_type="tracker", status=DeviceStatus.ONLINE)]
    store.registry.upsert_many(devices)
    readings = []
    for k in range(minutes * 12):  # every 5 s
        ts = now - timedelta(seconds=5 * (minutes * 12 - k))
        for d in devices:
            readings.append(Reading(d.device_id, "rssi", ts, -70.53))
            readings.append(Reading(d.device_id, "temperature", ts, 21.0 + k % 5))
        readings.append(Reading("trk-00000", "lat", ts, 52.52 + k * 1e-4))
        readings.append(Reading("trk-00000", "lon", ts, 13.40))
        readings.append(Reading("trk-00001", "lat", ts, 123.0))  # a broken fix
        readings.append(Reading("trk-00001", "lon", ts, 555.0))
    store.telemetry.write_batch(readings)


@pytest.fixture
def page(qtbot: Any, context: AppContext) -> Callable[[], Any]:
    def make() -> Any:
        from plugins.analytics.widgets.analytics_page import AnalyticsPage

        p = AnalyticsPage(context)
        qtbot.addWidget(p)
        p.resize(1300, 850)
        p.show()
        qtbot.waitExposed(p)
        qtbot.waitUntil(lambda: p.dashboard.data is not None, timeout=WAIT)
        return p

    return make


def test_dashboard_fills_itself_as_the_fleet_starts(qtbot: Any, page: Any, store: Store) -> None:
    p = page()
    dashboard = p.dashboard
    assert dashboard.cards["total"].value_label.text() == "0"
    assert not dashboard.data.online_ts_ms.size
    dashboard.refresh_timer.setInterval(200)  # the 15 s period, shortened for the test
    _fleet(store)
    qtbot.waitUntil(lambda: dashboard.cards["total"].value_label.text() == "7", timeout=WAIT)
    # 9 minutes of readings are one or two 15-minute buckets: drawn as bars,
    # not a line of one point that shows nothing.
    bars = [i for i in dashboard.online_plot.getPlotItem().items
            if isinstance(i, pg.BarGraphItem)]
    assert len(bars) == 1
    assert 1 <= len(bars[0].opts["height"]) <= 2
    assert all(h == 7 for h in bars[0].opts["height"])
    assert isinstance(dashboard.online_plot.getAxis("bottom"), TimeAxis)


def test_map_shows_devices_reporting_lat_lon(qtbot: Any, page: Any, store: Store) -> None:
    _fleet(store)
    dashboard = page().dashboard
    assert dashboard.map_plot.isVisible()
    points = {pt.data(): (pt.pos().x(), pt.pos().y()) for pt in dashboard.map_points.points()}
    # the tracker with a real fix, at its newest position; the broken fix is left out
    assert set(points) == {"trk-00000"}
    lon, lat = points["trk-00000"]
    assert lon == pytest.approx(13.40) and lat == pytest.approx(52.52 + 107e-4)
    assert not dashboard.map_note.isVisible()


def test_map_says_what_it_needs_when_nobody_has_a_location(qtbot: Any, page: Any,
                                                          store: Store) -> None:
    store.registry.upsert_many([Device("env-00000", device_type="environmental")])
    dashboard = page().dashboard
    assert dashboard.map_plot.isVisible()
    assert dashboard.map_note.isVisible() and "lat/lon" in dashboard.map_note.toPlainText()


def test_type_names_are_on_separate_rows_and_the_metric_combo_fits(
        qtbot: Any, page: Any, store: Store) -> None:
    _fleet(store)
    dashboard = page().dashboard
    plot = dashboard.by_type_plot
    left = plot.getAxis("left")
    names = [name for _pos, name in left._tickLevels[0]]
    assert set(names) == {"environmental", "power_meter", "tracker"}
    assert plot.getAxis("bottom")._tickLevels is None, "no names side by side on the x axis"
    combo = dashboard.metric_combo
    widest = max(combo.fontMetrics().horizontalAdvance(combo.itemText(i))
                 for i in range(combo.count()))
    assert combo.width() >= widest + 20, "the chosen metric is not clipped"


def test_live_and_history_open_on_a_device_and_history_on_the_data(
        qtbot: Any, page: Any, store: Store) -> None:
    _fleet(store, minutes=4)
    p = page()
    qtbot.waitUntil(lambda: p.live.picker.devices.count() == 7, timeout=WAIT)
    p.tabs.setCurrentWidget(p.live)
    qtbot.waitUntil(lambda: p.live.keys() != [], timeout=WAIT)
    assert p.live.picker.selected_devices() == ["env-00000"]
    qtbot.waitUntil(lambda: not p.live.chart.hint.isVisible(), timeout=WAIT)
    assert ("env-00000", "temperature") in p.live.chart.curves
    with qtbot.waitSignal(p.history.loaded, timeout=WAIT) as blocker:
        p.tabs.setCurrentWidget(p.history)
    # 4 minutes of data: the smallest range that holds them, not a day.
    assert p.history.range_combo.currentText() == "Last 15 minutes"
    (series,) = blocker.args[0].series
    assert len(series) > 0
    # and the chart starts near the first reading, not 11 empty minutes before it
    x0, x1 = p.history.chart.main_plot.getViewBox().viewRange()[0]
    first = float(series.ts_ms[0]) / 1000.0
    assert first - x0 < 0.1 * (x1 - first) + 60
    assert not p.history.chart.hint.isVisible()


def test_empty_views_say_to_pick_a_device(qtbot: Any, page: Any) -> None:
    p = page()
    p.tabs.setCurrentWidget(p.live)
    assert p.live.chart.hint.isVisible()
    assert "Pick one or more devices" in p.live.chart.hint.text()
    axis = p.live.chart.main_plot.getAxis("bottom")
    assert isinstance(axis, TimeAxis)
    assert axis.tickValues(0.0, 1.0, 800) == [], "no '00.100' labels on an empty chart"


def test_history_hint_does_not_widen_the_window(qtbot: Any, page: Any) -> None:
    """The long hint sits above the chart, not in the toolbar, where it made
    the page 1,300 px wide and pushed the window past a 1400 px screen."""
    p = page()
    assert "Pick one or more devices" in p.history.chart.hint.text()
    assert p.history.minimumSizeHint().width() <= 1150
