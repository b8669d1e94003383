"""Export buttons and shortcuts every chart has: data as CSV (Ctrl+E) and the
picture as PNG or SVG (Ctrl+Shift+E)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QFileDialog, QPushButton, QWidget

from core.text import plural
from plugins.analytics.widgets.time_chart import TimeChart


class ChartFileActions(QObject):
    """``exported(path, what)`` after a file was written; ``failed(message)`` otherwise."""

    exported = Signal(str, str)
    failed = Signal(str)

    def __init__(self, chart: TimeChart, name: str, host: QWidget,
                 prepare: Callable[[], None] | None = None) -> None:
        """``prepare`` runs before data is written (the live view snapshots its
        buffers into ``chart.source`` then)."""
        super().__init__(host)
        self.chart = chart
        self._prepare = prepare
        self.name = name
        self._host = host
        self.csv_button = QPushButton("Export CSV")
        self.csv_button.setToolTip("The data behind the chart, as shown (Ctrl+E)")
        self.image_button = QPushButton("Save image")
        self.image_button.setToolTip("The chart as PNG or SVG (Ctrl+Shift+E)")
        self.csv_button.clicked.connect(self.ask_csv)
        self.image_button.clicked.connect(self.ask_image)
        for keys, slot in (("Ctrl+E", self.ask_csv), ("Ctrl+Shift+E", self.ask_image)):
            shortcut = QShortcut(QKeySequence(keys), host)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)

    def ask_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self._host, "Export chart data", str(Path.home() / f"{self.name}.csv"),
            "CSV files (*.csv);;JSON files (*.json)")
        if path:
            self.write_data(Path(path))

    def ask_image(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self._host, "Save chart image", str(Path.home() / f"{self.name}.png"),
            "PNG images (*.png);;SVG drawings (*.svg)")
        if path:
            self.write_image(Path(path))

    def write_data(self, path: Path) -> int:
        if self._prepare is not None:
            self._prepare()
        try:
            rows = self.chart.export_data(path)
        except (OSError, ValueError) as exc:
            self.failed.emit(f"Export failed: {exc}")
            return 0
        self.exported.emit(str(path), plural(rows, "row"))
        return rows

    def write_image(self, path: Path) -> bool:
        try:
            self.chart.export_image(path)
        except (OSError, ValueError) as exc:
            self.failed.emit(f"Could not save the image: {exc}")
            return False
        self.exported.emit(str(path), "image")
        return True
