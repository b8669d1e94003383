"""A deployment's pace: devices notified, succeeded and failed per minute.

The legend is the plot's title line, above the curves rather than over them,
and the x axis is wall-clock time (console.widgets.time_axis) from the moment
the deployment was created, in whole minutes (HH:MM ticks): a rate per minute
on an axis labelled every few seconds read as a seconds chart. A young
rollout's axis spans at least ``MIN_SPAN_S``, so its first minute is not
stretched across the chart."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from console.theme import current_colors
from console.widgets.time_axis import TimeAxis
from plugins.firmware.widgets.common import STATE_COLOURS
from plugins.firmware.widgets.models import RateSeries

MIN_SPAN_S = 5 * 60.0
SERIES = (("notified", "Notified", STATE_COLOURS["IN_PROGRESS"]),
          ("succeeded", "Succeeded", STATE_COLOURS["SUCCEEDED"]),
          ("failed", "Problems", STATE_COLOURS["FAILED"]))  # failed, rejected, timed out


class RateChart(pg.PlotWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, axisItems={"bottom": TimeAxis(min_step_s=60.0)})
        self.setMenuEnabled(False)
        self.hideButtons()
        self.setMouseEnabled(x=False, y=False)
        self.showGrid(x=False, y=True, alpha=0.2)
        self.setLabel("left", "devices / min")
        # Whole devices per minute: never "(x0.001)" and a milli-scale axis.
        self.getAxis("left").enableAutoSIPrefix(False)
        self.curves: dict[str, pg.PlotDataItem] = {}
        for key, _title, colour in SERIES:
            fill = pg.mkColor(colour)
            fill.setAlpha(40 if key == "notified" else 0)
            self.curves[key] = self.plot(
                [0, 1], [0], stepMode="center", pen=pg.mkPen(colour, width=2),
                fillLevel=0 if key == "notified" else None, brush=pg.mkBrush(fill))
        self.series: RateSeries | None = None
        self.legend_text = ""
        self._show_legend()
        self.setMinimumHeight(150)

    def _show_legend(self) -> None:
        """Coloured keys with each curve's device count, in the title line."""
        c = current_colors()
        totals = self.series.totals if self.series is not None else {}
        parts = []
        for key, title, colour in SERIES:
            n = totals.get(key)
            label = f"{title} ({n})" if n is not None else title
            parts.append(f"<span style='color:{colour}'>■</span>&nbsp;"
                         f"<span style='color:{c.plot_foreground}'>{label}</span>")
        self.legend_text = "&nbsp;&nbsp;&nbsp;".join(parts)
        self.setTitle(self.legend_text, size="9pt")

    def set_series(self, series: RateSeries) -> None:
        self.series = series
        self._show_legend()
        if series.empty:
            for curve in self.curves.values():
                curve.setData([0, 1], [0])
            # A flat zero would auto-range to ±0.5: show 0..1 devices instead.
            self.setYRange(0, 1, padding=0)
            return
        for key, curve in self.curves.items():
            curve.setData(series.edges, getattr(series, key))
        top = max(float(max(series.notified.max(), series.succeeded.max(),
                            series.failed.max())), 1.0)
        self.setYRange(0, top * 1.1, padding=0)
        start = float(series.edges[0])
        self.setXRange(start, max(float(series.edges[-1]), start + MIN_SPAN_S), padding=0)
