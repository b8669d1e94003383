"""Fleet dashboard on the seeded store, the device map opening a device's
detail page in the real window, and an anomaly becoming an alert rule in two clicks."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from PySide6.QtCore import Qt

import plugins.analytics.plugin as analytics_plugin
import plugins.devices.plugin as devices_plugin
from core.model.timeutil import to_epoch_ms
from plugins.analytics.history import HistoryRequest
from tests.gui.alerts.conftest import BackendPlugin
from tests.gui.analytics.fleet_seed import ENV, PUMPS, SPIKE_C, SPIKE_DEVICE, SPIKE_OFFSET_S

pytestmark = pytest.mark.gui


def test_dashboard_numbers_come_from_the_store(qtbot, analytics_page, store):
    dashboard = analytics_page.dashboard
    qtbot.waitUntil(lambda: dashboard.data is not None, timeout=20_000)
    data = dashboard.data
    assert dashboard.cards["total"].value_label.text() == "10"
    # health: the link and the open alerts (18 seeded, active, over the 10 devices)
    assert [dashboard.cards[k].value_label.text() for k in ("online", "warning", "error",
                                                             "offline")] == ["1", "2", "6", "1"]
    assert dict(data.firmware) == {"1.5.0": 4, "2.0.1": 4, "1.4.2": 2}
    assert sum(int(c.sum()) for c in data.alerts_per_hour.values()) == len(store.alerts.list())
    assert int(data.alerts_per_hour["critical"].sum()) == 6
    assert data.online_count.max() == 10 and data.online_count[-1] == 8  # two went quiet
    latest = store.telemetry.latest_values(["temperature"])
    assert data.top_metric == "temperature"
    assert [d for d, _ in data.top] == sorted(latest, key=lambda d: -latest[d]["temperature"])
    assert len(dashboard.map_points.points()) == 10


def test_clicking_a_device_on_the_map_opens_its_detail(qtbot, make_context, make_window,
                                                        backend, seeded):
    context = make_context(("test-backend", BackendPlugin(backend)),
                           ("devices", devices_plugin), ("analytics", analytics_plugin))
    window = make_window(context, show=True)
    window.show_page("analytics")
    page = window.page_widget("analytics")
    qtbot.waitUntil(lambda: len(page.dashboard.map_points.points()) == 10, timeout=20_000)
    page.dashboard.click_map_device("env-00003")
    assert window.current_page_id() == "devices"
    devices = window.page_widget("devices")
    qtbot.waitUntil(lambda: devices.detail.loaded_device_id == "env-00003", timeout=20_000)


def test_spike_is_listed_and_becomes_a_rule_in_two_clicks(qtbot, analytics_page, seeded, store):
    history = analytics_page.history
    request = HistoryRequest((SPIKE_DEVICE, ENV[1]), ("temperature",), seeded,
                             seeded + timedelta(hours=3))
    with qtbot.waitSignal(history.loaded, timeout=30_000):
        history.load(request)
    panel = history.anomalies
    spike_ms = to_epoch_ms(seeded + timedelta(seconds=SPIKE_OFFSET_S))
    top = panel.points[0]
    assert (top.device_id, top.ts_ms) == (SPIKE_DEVICE, spike_ms)
    assert top.value - top.baseline == pytest.approx(SPIKE_C, abs=2.0)
    # shown on the chart as well
    rings = [item for _plot, item in history.chart._anomaly_items]
    ring_x = np.concatenate([item.data["x"] for item in rings])
    assert spike_ms / 1000 in ring_x.tolist()
    # a stricter threshold drops the weaker flags but keeps the spike
    panel.threshold.setValue(10.0)
    assert [p.ts_ms for p in panel.points] == [spike_ms]

    assert not panel.create_button.isEnabled()
    rect = panel.table.visualRect(panel.table.model().index(0, 1))
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert panel.create_button.isEnabled()
    with qtbot.waitSignal(panel.rule_created, timeout=15_000) as blocker:
        qtbot.mouseClick(panel.create_button, Qt.MouseButton.LeftButton)
    made = blocker.args[0]
    stored = store.rules.get(made.rule_id)
    assert stored.rule_type == "threshold"
    assert stored.scope.device_ids == frozenset({SPIKE_DEVICE})
    assert stored.params["metric"] == "temperature" and stored.params["op"] == "above"
    assert top.baseline < stored.params["limit"] < top.value
    assert "created" in panel.status.text()
    # the chart reloads and draws the new rule's limit
    qtbot.waitUntil(lambda: made.rule_id in {t.rule_id for t in history.chart.thresholds},
                    timeout=15_000)


def test_top_metric_can_be_changed(qtbot, analytics_page):
    dashboard = analytics_page.dashboard
    qtbot.waitUntil(lambda: dashboard.data is not None, timeout=20_000)
    assert "load" in dashboard.data.metrics
    with qtbot.waitSignal(dashboard.loaded, timeout=20_000):
        dashboard.metric_combo.setCurrentText("load")
        dashboard.metric_combo.activated.emit(dashboard.metric_combo.currentIndex())
    assert dashboard.data.top_metric == "load"
    assert {d for d, _ in dashboard.data.top} == set(PUMPS)
