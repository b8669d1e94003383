"""Which firmware versions the fleet runs: one horizontal bar per device type
and version, newest version first within a type, coloured by type."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from console.theme import current_colors
from core.errors import InvalidVersion
from core.model import SemVer
from core.text import plural

TYPE_COLOURS = ("#2563eb", "#16a34a", "#d97706", "#9333ea", "#0891b2", "#db2777", "#65a30d",
                "#dc2626")


def _version_order(version: str) -> tuple[int, SemVer | None]:
    try:
        return (0, SemVer.parse(version))
    except InvalidVersion:
        return (1, None)


def chart_rows(distribution: Mapping[str, Counter[str]]) -> list[tuple[str, str, int]]:
    """(device type, version, devices), types A-Z, newest version first."""
    rows: list[tuple[str, str, int]] = []
    for device_type in sorted(distribution):
        counts = distribution[device_type]
        known = sorted((v for v in counts if _version_order(v)[0] == 0),
                       key=SemVer.parse, reverse=True)
        other = sorted(v for v in counts if _version_order(v)[0] == 1)
        rows.extend((device_type, v, counts[v]) for v in known + other)
    return rows


class VersionChart(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("Devices per firmware version")
        self.title.setProperty("role", "secondary")
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.getPlotItem().invertY(True)  # first row at the top
        self.plot.setLabel("bottom", "devices")
        self.rows: list[tuple[str, str, int]] = []
        self._items: list[pg.GraphicsObject] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.plot, 1)

    def set_distribution(self, distribution: Mapping[str, Counter[str]]) -> None:
        for item in self._items:
            self.plot.removeItem(item)
        self._items = []
        self.rows = chart_rows(distribution)
        total = sum(n for _, _, n in self.rows)
        self.title.setText(f"Devices per firmware version ({plural(total, 'device')})" if total
                           else "Devices per firmware version: no devices registered")
        if not self.rows:
            return
        c = current_colors()
        colour_of = {t: TYPE_COLOURS[i % len(TYPE_COLOURS)]
                     for i, t in enumerate(sorted(distribution))}
        brushes = [pg.mkBrush(colour_of[t]) for t, _, _ in self.rows]
        bars = pg.BarGraphItem(x0=0, y=list(range(len(self.rows))), height=0.7,
                               width=[n for _, _, n in self.rows], brushes=brushes,
                               pen=pg.mkPen(None))
        self.plot.addItem(bars)
        self._items.append(bars)
        largest = max(n for _, _, n in self.rows)
        for i, (_, _, n) in enumerate(self.rows):
            label = pg.TextItem(str(n), color=c.plot_foreground, anchor=(0, 0.5))
            label.setPos(n + largest * 0.01, i)
            self.plot.addItem(label)
            self._items.append(label)
        ticks = [(i, f"{t}  {v}") for i, (t, v, _) in enumerate(self.rows)]
        self.plot.getAxis("left").setTicks([ticks, []])
        self.plot.setYRange(-0.6, len(self.rows) - 0.4, padding=0)
        self.plot.setXRange(0, largest * 1.12, padding=0)
        self.plot.setMinimumHeight(min(60 + 26 * len(self.rows), 320))
        self.plot.getAxis("left").setStyle(tickTextOffset=6)
        self.plot.getAxis("left").setPen(pg.mkPen(c.border))
        self.plot.getAxis("left").setTextPen(pg.mkPen(c.plot_foreground))
        self.plot.setToolTip("\n".join(f"{t} {v}: {n}" for t, v, n in self.rows))
        self.plot.getViewBox().setCursor(Qt.CursorShape.ArrowCursor)
