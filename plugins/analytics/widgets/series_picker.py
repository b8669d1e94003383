"""Pick devices and metrics: two filterable multi-select lists.

Metrics follow the chosen devices (a pump has no humidity), loaded in the
background through the analytics use cases. Devices with no stored readings
yet (a fleet just started, a device just installed) offer no metrics; the
picker looks again every few seconds until some arrive, so the person is not
left re-selecting the device to find out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from console.widgets.background import BackgroundCall
from core.model import Device
from core.ports.fleet_api import FleetApi

PREFERRED_METRICS = ("temperature", "load", "power_w", "battery_pct", "rssi")
#: how often devices that offered no metrics are asked again
METRICS_RETRY_MS = 3000


DEVICE_ID = Qt.ItemDataRole.UserRole


# A device as the picker lists it: id (the item's data), label, tooltip.
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
        self._filtered = False  # some device item may be hidden by the filter
        self._items: dict[str, QListWidgetItem] = {}  # device id -> its item
        self._entries: list[Entry] = []  # what the items show, in their order

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
            for (device_id, label, tip), before in zip(entries, self._entries, strict=True):
                if (label, tip) != before[1:]:
                    item = self._items[device_id]
                    item.setText(label)
                    item.setToolTip(tip)
            self._entries = entries
            self._apply_filter(self.filter.text())
            return
        chosen = set(self.selected_devices())
        self.devices.blockSignals(True)
        self.devices.clear()
        self._items = {}
        for device_id, label, tip in entries:
            item = QListWidgetItem(label)
            item.setData(DEVICE_ID, device_id)
            item.setToolTip(tip)
            self.devices.addItem(item)
            self._items[device_id] = item
            if device_id in chosen:  # one Qt call less per device (10,000 of them)
                item.setSelected(True)
        self.devices.blockSignals(False)
        self._entries = entries
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
            if (item := self._items.get(device_id)) is not None:
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
        needle = text.strip().lower()
        if not needle and not self._filtered:
            return  # nothing hidden, nothing to hide: no pass over every item
        self._filtered = bool(needle)
        for i in range(self.devices.count()):
            item = self.devices.item(i)
            item.setHidden(bool(needle) and needle not in item.text().lower()
                           and needle not in item.toolTip().lower())

    # -- state ----------------------------------------------------------------------------
    def selected_devices(self) -> list[str]:
        return sorted(str(item.data(DEVICE_ID)) for item in self.devices.selectedItems())

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
        return [str(self.devices.item(i).data(DEVICE_ID)) for i in range(self.devices.count())]

    def device_labels(self) -> list[str]:
        """What the list shows: "Pump P4 · pump-00003"."""
        return [self.devices.item(i).text() for i in range(self.devices.count())]
