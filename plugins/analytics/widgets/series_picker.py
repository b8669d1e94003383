"""Pick devices and metrics: two filterable multi-select lists.

Metrics follow the chosen devices (a pump has no humidity), loaded in the
background through the analytics use cases. Devices with no stored readings
yet (a fleet just started, a device just installed) offer no metrics; the
picker looks again every few seconds until some arrive, so the person is not
left re-selecting the device to find out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QEvent, QObject, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from console.widgets.background import BackgroundCall
from core.model import Device
from core.ports.fleet_api import FleetApi

PREFERRED_METRICS = ("temperature", "load", "power_w", "battery_pct", "rssi")
#: how often devices that offered no metrics are asked again
METRICS_RETRY_MS = 3000


# A device as the picker lists it: id, label, tooltip. The list's items hold
# only the label; the id and tooltip are found by the item's row.
Entry = tuple[str, str, str]


def picker_entries(devices: Sequence[Device]) -> list[Entry]:
    """The picker's items in order, as plain strings: made on a worker thread,
    so the GUI thread only compares them with what it shows. People know their
    devices by name ("Pump P4"), the store by id: the label shows both and the
    id is the item's data (the filter matches either)."""
    return [(d.device_id, device_label(d),
             f"{d.display_name} ({d.device_type}, {d.status.value})")
            for d in sorted(devices, key=lambda d: d.device_id)]


def device_label(device: Device) -> str:
    """A device as the picker lists it: its name, then its id (the id alone when unnamed)."""
    if device.name and device.name != device.device_id:
        return f"{device.name} · {device.device_id}"
    return device.device_id


class SeriesPicker(QWidget):
    """``changed`` fires (debounced) when the chosen devices or metrics change."""

    changed = Signal()

    def __init__(self, api_of: Callable[[], FleetApi], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._api_of = api_of
        self._background = BackgroundCall(self)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter devices by name or id")
        self.filter.setClearButtonEnabled(True)
        self.devices = QListWidget()
        self.devices.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        # a long name loses its middle, never the id at its end
        self.devices.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.devices.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.metrics = QListWidget()
        self.metrics.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Devices"))
        layout.addWidget(self.filter)
        layout.addWidget(self.devices, 3)
        layout.addWidget(QLabel("Metrics"))
        layout.addWidget(self.metrics, 2)
        self.metrics_hint = QLabel("")
        self.metrics_hint.setProperty("role", "secondary")
        self.metrics_hint.setWordWrap(True)
        self.metrics_hint.hide()
        layout.addWidget(self.metrics_hint)
        self._metrics_retry = QTimer(self)
        self._metrics_retry.setSingleShot(True)
        self._metrics_retry.setInterval(METRICS_RETRY_MS)
        self._metrics_retry.timeout.connect(self._ask_metrics_again)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(150)
        self._debounce.timeout.connect(self.changed)
        self.filter.textChanged.connect(self._apply_filter)
        self.devices.itemSelectionChanged.connect(self._devices_changed)
        self.metrics.itemSelectionChanged.connect(self._debounce.start)
        self._wanted_metrics: list[str] = []
        self._rows: dict[str, int] = {}  # device id -> its row
        self._entries: list[Entry] = []  # what the rows show, in their order
        self._needles: list[str] = []  # each row's label and tooltip, lower case
        self._hidden: set[int] = set()  # rows the filter hides
        self.devices.viewport().installEventFilter(self)

    # -- loading --------------------------------------------------------------------------
    def set_devices(self, devices: Sequence[Device]) -> None:
        self.set_entries(picker_entries(devices))

    def set_entries(self, entries: list[Entry]) -> None:
        """The list as ``picker_entries`` describes it (made off the GUI thread).

        The analytics page hands the fleet over after every dashboard refresh
        (every 15 s while it is shown). Rebuilding 10,000 items in each of two
        pickers held the window for 0.4-0.85 s each time, so the same fleet
        changes nothing, a changed name or status changes only its item, and
        only devices added or removed rebuild the list."""
        if entries == self._entries:
            return
        if [e[0] for e in entries] == [e[0] for e in self._entries]:
            for row, (entry, before) in enumerate(zip(entries, self._entries, strict=True)):
                if entry[1] != before[1]:
                    self.devices.item(row).setText(entry[1])
            self._take(entries)
            return
        # One call makes every item (a label each); ids and tooltips stay here,
        # found by row. Four Qt calls an item, each waiting for the GIL while
        # the console's network threads held it, took 0.6-0.8 s at 10,000
        # devices on a busy 2-core box; a Python-made item is a PySide wrapper, and
        # each of Qt's data() calls on it takes the GIL (docs/benchmarks.md).
        chosen = set(self.selected_devices())
        self.devices.blockSignals(True)
        self.devices.clear()
        self.devices.addItems([label for _id, label, _tip in entries])
        self._hidden = set()
        self._rows = {device_id: row for row, (device_id, _l, _t) in enumerate(entries)}
        for device_id in chosen:
            if (at := self._rows.get(device_id)) is not None:
                self.devices.item(at).setSelected(True)
        self.devices.blockSignals(False)
        self._take(entries)

    def _take(self, entries: list[Entry]) -> None:
        self._entries = entries
        self._needles = [f"{label}\n{tip}".lower() for _id, label, tip in entries]
        self._apply_filter(self.filter.text())

    def select(self, devices: Sequence[str], metrics: Sequence[str] = ()) -> None:
        """Choose devices (and, once their metrics are known, metrics) in code:
        the dashboard and tests use it."""
        self._wanted_metrics = list(metrics)
        self.devices.blockSignals(True)
        # Qt finds the wanted items itself: a loop over every item of a 10,000-device
        # list took seconds of the window's time with the hub in the same process.
        self.devices.clearSelection()
        first = None
        for device_id in dict.fromkeys(devices):
            if (row := self._rows.get(device_id)) is not None:
                item = self.devices.item(row)
                item.setSelected(True)
                first = first or item
        if first is not None:  # the person sees what was chosen for them
            self.devices.scrollToItem(first, QAbstractItemView.ScrollHint.PositionAtCenter)
        self.devices.blockSignals(False)
        self._devices_changed()

    def _devices_changed(self) -> None:
        self._metrics_retry.stop()
        devices = self.selected_devices()
        api_of = self._api_of

        def load() -> list[str]:
            return api_of().analytics.metrics(devices)

        # Latest wins: metrics of an earlier selection never replace these.
        self._background.start(load, self._metrics_loaded, lambda _exc: None, key="metrics")

    def _metrics_loaded(self, names: list[str]) -> None:
        waiting = bool(self.selected_devices()) and not names
        self.metrics_hint.setText("No readings stored for these devices yet; looking again "
                                  f"every {METRICS_RETRY_MS // 1000} s" if waiting else "")
        self.metrics_hint.setVisible(waiting)
        if waiting:  # metrics asked for in code still apply once readings arrive
            self.metrics.clear()
            self._metrics_retry.start()
            self._debounce.start()  # the chart says what is missing
            return
        chosen = set(self._wanted_metrics or self.selected_metrics())
        self._wanted_metrics = []
        if not chosen & set(names):
            chosen = {next((m for m in PREFERRED_METRICS if m in names), names[0])} \
                if names else set()
        self.metrics.blockSignals(True)
        self.metrics.clear()
        for name in names:
            item = QListWidgetItem(name)
            self.metrics.addItem(item)
            item.setSelected(name in chosen)
        self.metrics.blockSignals(False)
        self._debounce.start()

    def _ask_metrics_again(self) -> None:
        if self.metrics.count() or not self.selected_devices():
            return
        if not self.isVisible():  # another page is shown: ask when it is back in view
            self._metrics_retry.start()
            return
        self._devices_changed()

    def _apply_filter(self, text: str) -> None:
        """Matched here against each row's label and tooltip; Qt is told only
        of the rows whose state changes."""
        needle = text.strip().lower()
        if not needle and not self._hidden:
            return  # nothing hidden, nothing to hide
        hidden = {row for row, hay in enumerate(self._needles) if needle not in hay} \
            if needle else set()
        for row in hidden ^ self._hidden:
            self.devices.setRowHidden(row, row in hidden)
        self._hidden = hidden

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """The device list's tooltips, from the row's entry."""
        if event.type() == QEvent.Type.ToolTip and watched is self.devices.viewport():
            assert isinstance(event, QHelpEvent)
            tip = self.tooltip_at(event.pos())
            if tip:
                QToolTip.showText(event.globalPos(), tip, self.devices.viewport())
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().eventFilter(watched, event)

    def tooltip_at(self, pos: QPoint) -> str:
        """The tooltip of the device row at ``pos`` (viewport coordinates)."""
        row = self.devices.indexAt(pos).row()
        return self._entries[row][2] if 0 <= row < len(self._entries) else ""

    # -- state ----------------------------------------------------------------------------
    def selected_devices(self) -> list[str]:
        entries = self._entries
        return sorted(entries[index.row()][0]
                      for index in self.devices.selectionModel().selectedIndexes())

    def selected_metrics(self) -> list[str]:
        return sorted(item.text() for item in self.metrics.selectedItems())

    @property
    def waiting_for_readings(self) -> bool:
        """Devices are chosen but none has a stored reading yet."""
        return not self.metrics_hint.isHidden()

    def metric_names(self) -> list[str]:
        return [self.metrics.item(i).text() for i in range(self.metrics.count())]

    def device_names(self) -> list[str]:
        """The listed devices' ids, in list order."""
        return [device_id for device_id, _label, _tip in self._entries]

    def device_labels(self) -> list[str]:
        """What the list shows: "Pump P4 · pump-00003"."""
        return [self.devices.item(i).text() for i in range(self.devices.count())]
