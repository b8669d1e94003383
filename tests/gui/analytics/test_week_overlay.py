"""The week overlay in the History view: every device of the fleet drawn over
"Last week" from the minute rollups (the hour before now from raw rows), each
curve and band equal to numpy on the raw readings, the power cut a gap."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text

from core.model.timeutil import to_epoch_ms
from plugins.analytics.series_math import bucket_stats
from tests.gui.analytics.fleet_seed import ENV, PUMPS

pytestmark = pytest.mark.gui


def test_week_overlay_draws_every_device_from_the_rollups(qtbot: Any, analytics_page: Any,
                                                          seeded: Any, store: Any) -> None:
    history = analytics_page.history
    analytics_page.tabs.setCurrentWidget(history)
    # The person picks "Last week" (the default range would narrow itself to the data).
    history.range_combo.setCurrentIndex(0)
    history.range_combo.setCurrentIndex(history.range_combo.findText("Last week"))
    devices = [*ENV, *PUMPS]
    with qtbot.waitSignal(history.loaded, timeout=30_000) as blocker:
        history.picker.select(devices, ["temperature"])
    result = blocker.args[0]
    request = result.request
    assert request.end - request.start == timedelta(days=7)
    # about one bucket per pixel column of a week: whole minutes, so rollups serve it
    assert request.bucket_ms is not None and request.bucket_ms % 60_000 == 0
    assert request.bucket_ms >= 7 * 86_400_000 / history.chart.graphics.width()
    with store.engine.connect() as conn:
        folded = conn.execute(text(
            "SELECT count(DISTINCT device_id) FROM telemetry_minute"
            " WHERE metric = 'temperature'")).scalar_one()
    assert folded == len(devices)  # the hours before the newest were read from rollups
    chart = history.chart
    assert set(chart.curves) == {(d, "temperature") for d in devices}
    assert [s.device_id for s in result.series] == devices
    start_ms, end_ms = to_epoch_ms(request.start), to_epoch_ms(request.end)
    for device in devices:
        raw = store.telemetry.query(device, "temperature", request.start, request.end)
        want = bucket_stats(raw.ts_ms, raw.value, start_ms, end_ms, request.bucket_ms)
        curve = chart.curves[(device, "temperature")]
        finite = np.isfinite(curve.yData)
        np.testing.assert_array_equal(np.round(curve.xData[finite] * 1000).astype(np.int64),
                                      want.start_ms)
        np.testing.assert_allclose(curve.yData[finite], want.mean, rtol=1e-12)
        band = chart._bands[(device, "temperature")]
        np.testing.assert_array_equal(band.low[finite], want.minimum)
        np.testing.assert_array_equal(band.high[finite], want.maximum)
        assert not band.path().isEmpty()
    assert "buckets" in history.status.text()
