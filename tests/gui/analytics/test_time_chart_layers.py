"""The time chart's live layers and colours: what the stacked live view draws."""

from __future__ import annotations

import time

import numpy as np
import pytest
import shiboken6
from PySide6.QtWidgets import QApplication

from plugins.analytics.widgets.time_chart import ChartSeries, TimeChart

pytestmark = pytest.mark.gui

DEVICES = ("office-00000", "office-00001", "office-00002")
METRICS = ("battery_pct", "battery_v", "temperature")


def _series() -> list[ChartSeries]:
    now = time.time()
    x = now - np.arange(60, 0, -1, dtype=np.float64)
    return [ChartSeries(d, m, x, np.full(60, float(i + j)))
            for i, d in enumerate(DEVICES) for j, m in enumerate(METRICS)]


def _chart(qtbot) -> TimeChart:
    chart = TimeChart()
    qtbot.addWidget(chart)
    chart.resize(900, 700)
    chart.show()
    qtbot.waitExposed(chart)
    return chart


def test_stacked_panels_colour_each_device_alike_and_apart(qtbot) -> None:
    """Per-series colours put near twins in one panel (amber and orange on
    battery_v): a legend swatch then matched two curves. Stacked, a device has
    one colour in every panel, and the curves of a panel all differ."""
    chart = _chart(qtbot)
    chart.set_stacked(True)
    chart.set_series(_series())
    assert sorted(chart.plots) == sorted(METRICS)
    for device in DEVICES:
        colours = {chart.curves[(device, m)].opts["pen"].color().name() for m in METRICS}
        assert len(colours) == 1, f"{device} drawn in {colours}"
    for metric, plot in chart.plots.items():
        pens = [chart.curves[(d, metric)].opts["pen"].color().name() for d in DEVICES]
        assert len(set(pens)) == len(DEVICES), f"{metric}: {pens}"
        # the legend's swatch is the curve's own pen
        for sample, label in plot.legend.items:
            device = label.text.split(" · ")[0]
            assert sample.item.opts["pen"].color().name() == \
                chart.curves[(device, metric)].opts["pen"].color().name()


def test_live_layer_timers_go_with_their_plots(qtbot) -> None:
    """A live layer's render timer is its child: clearing the plots (theme switch,
    stacking, closing the page) deletes it instead of leaving it unparented."""
    chart = _chart(qtbot)
    chart.set_live(True)
    chart.set_series(_series())
    chart.live_frame()
    timers = [layer._timer for layer in chart._layers.values()]
    assert timers and all(t.parent() is layer
                          for t, layer in zip(timers, chart._layers.values(), strict=True))
    chart.set_stacked(True)  # the plots, and their layers, are rebuilt
    chart.live_frame()
    QApplication.processEvents()
    qtbot.waitUntil(lambda: not any(shiboken6.isValid(t) for t in timers), timeout=10_000)
