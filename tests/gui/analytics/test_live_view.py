"""Live charts: readings published on the live feed reach the chart through the
bridge, redraws stay capped whatever the message rate, pause holds the picture,
and a real simulated fleet through a real hub shows up live and in history."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGraphicsItem

from core.context import AppContext
from core.model import Reading
from core.model.events import TelemetryReceived
from core.plugins import PluginManager
from plugins.analytics.widgets.live_view import FPS
from simulator.api import RunningFleet
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario
from tests.gui.analytics.fleet_seed import ENV

pytestmark = pytest.mark.gui


def _select(qtbot, live, devices, metrics):
    live.picker.select(devices, metrics)
    qtbot.waitUntil(lambda: sorted(live.chart.curves) == sorted(
        (d, m) for d in devices for m in metrics), timeout=20_000)


def _publish(bus, device, metric, start, n, step_s, value=lambda i: float(i)):
    for i in range(n):
        at = start + timedelta(seconds=i * step_s)
        bus.publish([TelemetryReceived(device, (Reading(device, metric, at, value(i)),))])


def test_readings_flow_in_and_redraws_stay_capped(qtbot, analytics_page, bus):
    live = analytics_page.live
    analytics_page.tabs.setCurrentWidget(live)
    _select(qtbot, live, [ENV[0], ENV[1]], ["humidity"])
    frames_before = live.frames_drawn
    start = datetime.now(UTC).replace(microsecond=0)
    n = 3000
    began = time.monotonic()
    # 3,000 messages per device from another thread as fast as possible
    workers = [threading.Thread(target=_publish, args=(bus, d, "humidity", start, n, 0.05))
               for d in ENV[:2]]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    qtbot.waitUntil(lambda: all(live.buffer.window((d, "humidity"), start.timestamp())[0].size
                                == n for d in ENV[:2]), timeout=20_000)
    qtbot.wait(300)
    elapsed = time.monotonic() - began
    frames = live.frames_drawn - frames_before
    assert 1 <= frames <= FPS * elapsed + 3, (frames, elapsed)
    assert live.bridge.batches_emitted <= 30 * elapsed + 3
    curve = live.chart.curves[(ENV[0], "humidity")]
    newest = start.timestamp() + (n - 1) * 0.05
    assert curve.xData[-1] == pytest.approx(newest)
    assert curve.yData[-1] == n - 1
    # the x axis follows the newest data over the chosen window (5 minutes)
    x0, x1 = live.chart.main_plot.getViewBox().viewRange()[0]
    assert x1 == pytest.approx(newest, abs=0.5) and x1 - x0 == pytest.approx(300, abs=1)


def test_space_pauses_and_resumes(qtbot, analytics_page, bus):
    live = analytics_page.live
    analytics_page.tabs.setCurrentWidget(live)
    _select(qtbot, live, [ENV[2]], ["temperature"])
    start = datetime.now(UTC).replace(microsecond=0)
    _publish(bus, ENV[2], "temperature", start, 10, 1.0)
    curve = live.chart.curves[(ENV[2], "temperature")]
    qtbot.waitUntil(lambda: curve.xData is not None and curve.yData[-1] == 9.0, timeout=10_000)
    live.chart.setFocus()
    qtbot.keyClick(live.chart, Qt.Key.Key_Space)
    assert live.paused and live.pause_button.text() == "Resume"
    _publish(bus, ENV[2], "temperature", start + timedelta(seconds=10), 5, 1.0,
             value=lambda i: 100.0 + i)
    qtbot.waitUntil(lambda: live.buffer.window((ENV[2], "temperature"), 0)[1][-1] == 104.0,
                    timeout=10_000)
    qtbot.wait(300)
    assert curve.yData[-1] == 9.0  # the picture holds while paused
    qtbot.keyClick(live.chart, Qt.Key.Key_Space)
    assert not live.paused
    assert curve.yData[-1] == 104.0


def test_zooming_pauses_and_csv_exports_the_window(qtbot, analytics_page, bus, tmp_path):
    live = analytics_page.live
    _select(qtbot, live, [ENV[3]], ["temperature"])
    start = datetime.now(UTC).replace(microsecond=0)
    _publish(bus, ENV[3], "temperature", start, 50, 1.0)
    qtbot.waitUntil(lambda: live.buffer.window((ENV[3], "temperature"), start.timestamp()
                                               )[0].size == 50, timeout=10_000)
    vb = live.chart.main_plot.getViewBox()
    vb.scaleBy((0.5, 1.0))
    vb.sigRangeChangedManually.emit(vb.state["mouseEnabled"])
    assert live.paused
    rows = live.files.write_data(tmp_path / "live.csv")
    lines = (tmp_path / "live.csv").read_text().splitlines()
    in_window = len(live.buffer.window((ENV[3], "temperature"),
                                       live.buffer.newest_s - live.window_s())[0])
    assert rows == len(lines) - 1 == in_window >= 50
    assert lines[-1].startswith(f"{ENV[3]},temperature,") and lines[-1].endswith(",49.0")


@pytest.fixture
def live_fleet_window(config, make_window, qtbot):
    # A private embedded broker: the session broker keeps other tests' retained statuses.
    profile = dataclasses.replace(config.profile, broker="embedded", demo_fleet=False)
    config = dataclasses.replace(config, profiles={**config.profiles, "local": profile})
    context = AppContext(config, PluginManager(entry_points=False, blocked=()))
    backend = context.backend
    fleet = RunningFleet(Scenario("analytics", (DeviceGroup(
        "env", "environmental", 3, org="site", interval_s=0.5, id_prefix="ana"),)),
        on_broker=backend.broker, client_id_prefix=f"ana-{id(context)}-").start()
    window = make_window(context, show=True)
    yield window, backend, fleet
    fleet.stop()
    window.close()
    context.close()


def test_simulated_fleet_through_the_hub_live_and_history(live_fleet_window, qtbot):
    window, _backend, _fleet = live_fleet_window
    window.show_page("analytics")
    page = window.page_widget("analytics")
    qtbot.waitUntil(lambda: page.live.picker.devices.count() == 3, timeout=30_000)
    page.dashboard.refresh()  # the fleet registered after the first load
    page.tabs.setCurrentWidget(page.live)
    device = page.live.picker.device_names()[0]
    _select(qtbot, page.live, [device], ["temperature"])
    curve = page.live.chart.curves[(device, "temperature")]
    # new live points keep arriving through broker -> hub -> bridge -> chart
    qtbot.waitUntil(lambda: curve.xData is not None and curve.xData.size >= 6,
                    timeout=30_000)
    seen = curve.xData.size
    qtbot.waitUntil(lambda: curve.xData.size >= seen + 4, timeout=30_000)
    assert np.all(np.diff(curve.xData) > 0) and np.isfinite(curve.yData).all()
    # and the hub stored them: history shows the same readings
    page.tabs.setCurrentWidget(page.history)
    page.history.resolution.setCurrentIndex(1)  # raw readings
    page.history.range_combo.setCurrentIndex(page.history.range_combo.findText("Last hour"))
    with qtbot.waitSignal(page.history.loaded, timeout=30_000) as blocker:
        page.history.picker.select([device], ["temperature"])
    (series,) = blocker.args[0].series
    assert len(series) >= seen
    stored = dict(zip(series.ts_ms.tolist(), series.value.tolist(), strict=True))
    live_x = np.round(curve.xData[:seen] * 1000).astype(np.int64).tolist()
    matched = [stored[t] for t in live_x if t in stored]
    assert len(matched) >= seen - 2  # the newest may still sit in the hub's write batch
    assert matched == [y for t, y in zip(live_x, curve.yData[:seen].tolist(), strict=True)
                       if t in stored]


def test_many_curves_are_updated_within_the_frame_budget_and_pause_is_full_resolution(
        qtbot, analytics_page, bus, monkeypatch, tmp_path):
    from plugins.analytics.widgets import live_view as live_module

    live = analytics_page.live
    analytics_page.tabs.setCurrentWidget(live)
    _select(qtbot, live, ENV[:4], ["temperature", "humidity"])
    live.frame_timer.stop()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=250)
    n = 5000  # 250 s at 20 Hz: more points than the plot has pixel columns
    live.on_events([TelemetryReceived(d, tuple(
        Reading(d, m, start + timedelta(seconds=i * 0.05), float(i % 97)) for m in
        ("temperature", "humidity"))) for d in ENV[:4] for i in range(n)])
    # A zero budget: one curve per frame, oldest first, the others wait their turn.
    monkeypatch.setattr(live_module, "FRAME_BUDGET_S", 0.0)
    live.draw_frame()
    drawn = [k for k, c in live.chart.curves.items() if c.xData is not None and c.xData.size]
    assert len(drawn) == 1
    for _ in range(7):
        live.draw_frame()
    assert all(c.xData.size for c in live.chart.curves.values())
    assert not live._dirty
    curve = live.chart.curves[(ENV[0], "temperature")]
    width = live.chart.main_plot.getViewBox().width()
    assert curve.xData.size <= 2 * width + 10 < n  # peak downsampled to the plot's width
    assert curve.xData[-1] == pytest.approx(start.timestamp() + (n - 1) * 0.05)
    assert np.nanmax(curve.yData) == 96.0
    # The crosshair reads the readings themselves, not the drawn peaks.
    assert len(live.chart.values_at(start.timestamp() + 1.0)) == 8
    # The curves are stroked by the chart's live layer over a few short events.
    before = live.chart.live_renders
    qtbot.waitUntil(lambda: live.chart.live_renders > before, timeout=5_000)
    no_contents = QGraphicsItem.GraphicsItemFlag.ItemHasNoContents
    assert curve.curve.flags() & no_contents
    live.chart.export_image(tmp_path / "live.png")  # the curves draw themselves for it
    assert (tmp_path / "live.png").stat().st_size > 0 and curve.curve.flags() & no_contents
    live.set_paused(True)
    assert not curve.curve.flags() & no_contents
    assert curve.xData.size >= n and curve.opts["clipToView"]
    live.set_paused(False)
    assert curve.xData.size < n and not curve.opts["clipToView"]
    live.frame_timer.start()
