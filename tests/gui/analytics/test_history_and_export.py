"""History chart on simulated telemetry in the real SQL store: the plotted
buckets equal numpy on the raw rows, the power cut is a gap, thresholds and
alert events are drawn, and CSV/PNG/SVG exports hold what the chart shows."""

from __future__ import annotations

import csv
from datetime import timedelta

import numpy as np
import pytest

from core.model.timeutil import to_epoch_ms
from plugins.analytics.history import HistoryRequest
from plugins.analytics.series_math import bucket_stats
from tests.gui.analytics.fleet_seed import ENV, HOURS, PUMPS

pytestmark = pytest.mark.gui


def _load(qtbot, page, request):
    with qtbot.waitSignal(page.history.loaded, timeout=30_000) as blocker:
        page.history.load(request)
    return blocker.args[0]


def test_plotted_buckets_equal_numpy_on_the_raw_rows(qtbot, analytics_page, seeded, store):
    start, end = seeded + timedelta(seconds=13), seeded + timedelta(hours=HOURS)
    request = HistoryRequest(ENV[:3], ("temperature",), start, end, 60_000)
    result = _load(qtbot, analytics_page, request)
    chart = analytics_page.history.chart
    assert set(chart.curves) == {(d, "temperature") for d in ENV[:3]}
    for device in ENV[:3]:
        raw = store.telemetry.query(device, "temperature", start, end)
        want = bucket_stats(raw.ts_ms, raw.value, to_epoch_ms(start), to_epoch_ms(end), 60_000)
        curve = chart.curves[(device, "temperature")]
        x, y = curve.xData, curve.yData
        finite = np.isfinite(y)
        np.testing.assert_array_equal(np.round(x[finite] * 1000).astype(np.int64),
                                      want.start_ms)
        np.testing.assert_allclose(y[finite], want.mean, atol=1e-9)
        # exactly one hole: the 10-minute power cut an hour in
        assert np.count_nonzero(~finite) == 1
        hole = x[~finite][0]
        cut = seeded.timestamp() + 3600
        assert cut <= hole <= cut + 600
        band = chart._bands[(device, "temperature")]
        low, high = band.low, band.high
        np.testing.assert_allclose(low[finite], want.minimum, atol=1e-9)
        np.testing.assert_allclose(high[finite], want.maximum, atol=1e-9)
    assert [t.rule_id for t in chart.thresholds] == ["too-warm"]
    assert chart.thresholds[0].limit == 26.0
    alerts_in_range = [a for a in store.alerts.list() if a.device_id in ENV[:3]
                       and start <= a.created_at < end]
    assert len(chart.alert_marks) == len(alerts_in_range) > 0
    assert "1m buckets" in analytics_page.history.status.text()
    assert result.request.bucket_ms == 60_000


def test_auto_resolution_fits_the_width_and_stacks_per_metric(qtbot, analytics_page, seeded):
    history = analytics_page.history
    history.picker.select([ENV[0], PUMPS[0]], ["temperature", "humidity"])
    with qtbot.waitSignal(history.loaded, timeout=30_000) as blocker:
        pass
    request = blocker.args[0].request
    # the picker applies to what the devices have: pumps have no humidity
    assert request.metrics == ("humidity", "temperature")
    width = history.chart.graphics.width()
    span_ms = to_epoch_ms(request.end) - to_epoch_ms(request.start)
    assert request.bucket_ms is not None and span_ms / request.bucket_ms <= width
    history.stacked.setChecked(True)
    assert sorted(history.chart.plots) == ["humidity", "temperature"]
    assert len(history.chart.curves) == 4


def test_crosshair_reads_every_series(qtbot, analytics_page, seeded):
    request = HistoryRequest(ENV[:2], ("humidity",), seeded, seeded + timedelta(hours=1))
    _load(qtbot, analytics_page, request)
    chart = analytics_page.history.chart
    x = seeded.timestamp() + 1800 + 0.4
    readings = dict(chart.values_at(x))
    for device in ENV[:2]:
        curve = chart.curves[(device, "humidity")]
        i = int(np.argmin(np.abs(curve.xData - x)))
        assert readings[f"{device} · humidity"] == curve.yData[i]
    chart.show_crosshair(x)
    assert f"{readings[f'{ENV[0]} · humidity']:.4g}" in chart.readout.text()


def test_csv_export_holds_the_buckets_behind_the_chart(qtbot, analytics_page, seeded, tmp_path,
                                                       store):
    request = HistoryRequest((PUMPS[1],), ("load",), seeded, seeded + timedelta(hours=2),
                             300_000)
    result = _load(qtbot, analytics_page, request)
    files = analytics_page.history.files
    rows = files.write_data(tmp_path / "load.csv")
    data = list(csv.DictReader((tmp_path / "load.csv").open()))
    (series,) = result.series
    raw = store.telemetry.query(PUMPS[1], "load", request.start, request.end)
    want = bucket_stats(raw.ts_ms, raw.value, to_epoch_ms(request.start),
                        to_epoch_ms(request.end), 300_000)
    assert rows == len(data) == len(series) == want.start_ms.size
    # buckets wholly inside the 10-minute cut are absent, not zero
    assert np.diff(want.start_ms).max() >= 2 * 300_000
    assert [int(r["ts_ms"]) for r in data] == want.start_ms.tolist()
    np.testing.assert_allclose([float(r["avg"]) for r in data], want.mean, atol=1e-9)
    assert [int(r["count"]) for r in data] == want.count.tolist()
    assert analytics_page.history.status.text().startswith(f"Saved {rows} rows to")


def test_raw_csv_and_images(qtbot, analytics_page, seeded, tmp_path):
    request = HistoryRequest((ENV[2],), ("temperature",), seeded,
                             seeded + timedelta(minutes=30))
    _load(qtbot, analytics_page, request)
    files = analytics_page.history.files
    assert files.write_data(tmp_path / "raw.csv") == 360  # 30 min at 5 s
    header = (tmp_path / "raw.csv").read_text().splitlines()[0]
    assert header == "device_id,metric,time,ts_ms,value"
    assert files.write_image(tmp_path / "chart.png")
    assert files.write_image(tmp_path / "chart.svg")
    png = (tmp_path / "chart.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5_000
    svg = (tmp_path / "chart.svg").read_text()
    assert "<svg" in svg and "<path" in svg
    assert not files.write_image(tmp_path / "chart.gif")
    assert "not one of .png, .svg" in analytics_page.history.status.text()


def test_a_device_without_readings_yet_offers_its_metrics_once_they_arrive(
        qtbot, analytics_page, store):
    """A technician picks a device installed a minute ago: the picker says why there is
    nothing to choose and looks again by itself, and the chart draws the first readings
    without the device being picked a second time."""
    from core.model import Device, Reading
    from core.model.timeutil import utcnow
    from plugins.analytics.widgets.series_picker import METRICS_RETRY_MS

    store.registry.upsert(Device("env-new", device_type="environmental", organization="acme"))
    picker = analytics_page.history.picker
    picker.set_devices(store.registry.list())
    picker.select(["env-new"], ["temperature"])
    analytics_page.tabs.setCurrentWidget(analytics_page.history)
    qtbot.waitUntil(lambda: picker.metrics_hint.isVisible(), timeout=10_000)
    assert picker.metric_names() == []
    assert "No readings stored for these devices yet" in picker.metrics_hint.text()
    qtbot.waitUntil(lambda: analytics_page.history.status.text() == "Waiting for readings",
                    timeout=5_000)
    now = utcnow()
    store.telemetry.write_batch([Reading("env-new", metric, now - timedelta(seconds=s), v)
                                 for s in range(1, 31)
                                 for metric, v in (("temperature", 21.0 + s / 10),
                                                   ("humidity", 40.0))])
    with qtbot.waitSignal(analytics_page.history.loaded,
                          timeout=METRICS_RETRY_MS + 10_000) as blocker:
        pass
    assert blocker.args[0].request.metrics == ("temperature",)  # the one asked for, kept
    assert picker.metric_names() == ["humidity", "temperature"]
    assert not picker.metrics_hint.isVisible()
    assert sum(len(s) for s in blocker.args[0].series) == 30
