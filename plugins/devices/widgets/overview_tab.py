"""The detail panel's Overview tab: the latest value and a 15-minute
sparkline per metric, the editable identity (name, tags, location), and what
the registry and the hub know (type, firmware, last seen, link statistics).

Link statistics are counted by the hub, not carried by live events, so they
are re-read while the tab shows a device; "Last seen" ages every second.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from console.widgets.background import BackgroundCall
from console.widgets.signals import safe_emit
from core.errors import ValidationError
from core.identity import local_owner
from core.model import Device, LinkStats, Location, Reading
from core.model.roles import Actor, Permission
from core.model.timeutil import utcnow
from core.ports.fleet_api.devices import DeviceCapabilities, DeviceDetails, DevicesApi
from core.text import plural
from plugins.devices.widgets.fleet_model import relative_time
from plugins.devices.widgets.panel_text import format_value, local_time, show_status

if TYPE_CHECKING:
    from plugins.devices.widgets.sparkline import Sparkline

LINK_REFRESH_MS = 5_000  # link statistics re-read while a device is shown
LINK = "link"  # BackgroundCall key: one link read at a time, the newest wins
INFO_ROWS = (("device_id", "Device id"), ("type", "Type"), ("organization", "Organization"),
             ("firmware", "Firmware"), ("last_seen", "Last seen"), ("created", "Registered"),
             ("link", "Link"))


class ValueRow:
    """One metric: its name, latest value (exact time in the tooltip), sparkline."""

    def __init__(self, metric: str) -> None:
        self.name = QLabel(metric)
        self.name.setProperty("role", "secondary")
        self.value = QLabel("—")
        self.value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.value.setMinimumWidth(70)
        self.value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # Imported with the first metric shown: pyqtgraph (and numpy) would
        # otherwise load before the console's first window is painted.
        from plugins.devices.widgets.sparkline import Sparkline

        self.spark = Sparkline()

    def set_value(self, reading: Reading) -> None:
        self.value.setText(format_value(reading.metric, reading.value))
        self.value.setToolTip(local_time(reading.ts))


def edit_device(device: Device, *, name: str, tags: Iterable[str],
                location: tuple[float, float, str] | None) -> Device:
    """The edited device, validated (raises ValidationError)."""
    clean_tags = frozenset(t.strip() for t in tags if t.strip())
    loc = None if location is None else Location(location[0], location[1], location[2].strip())
    return replace(device, name=name.strip(), tags=clean_tags, location=loc)


class OverviewTab(QScrollArea):
    saved = Signal(object)  # Device, after the console saved an edit

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.api: DevicesApi | None = None
        self.actor: Actor = local_owner()
        self.capabilities: DeviceCapabilities | None = None
        self.device: Device | None = None
        #: the id whose details finished loading (link statistics follow it)
        self.loaded_device_id: str | None = None
        self._value_rows: dict[str, ValueRow] = {}
        self._last_seen_s: float | None = None
        self._background = BackgroundCall(self)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 8, 4, 0)
        layout.addWidget(self._build_values())
        layout.addWidget(self._build_identity())
        layout.addWidget(self._build_info())
        layout.addStretch(1)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setWidget(body)
        self._clock = QTimer(self)
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self._tick_last_seen)
        self._clock.start()
        self._link_timer = QTimer(self)
        self._link_timer.setInterval(LINK_REFRESH_MS)
        self._link_timer.timeout.connect(self.reload_link)
        self._link_timer.start()

    # -- building ------------------------------------------------------------------------
    def _build_values(self) -> QGroupBox:
        values = QGroupBox("Latest values · last 15 min")
        self.values_grid = QGridLayout(values)
        self.values_grid.setColumnStretch(2, 1)
        self.values_empty = QLabel("No telemetry yet")
        self.values_empty.setProperty("role", "secondary")
        self.values_grid.addWidget(self.values_empty, 0, 0, 1, 3)
        return values

    def _build_identity(self) -> QGroupBox:
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("Human-friendly name")
        self.tags_edit = QLineEdit()
        self.tags_edit.setPlaceholderText("comma separated, e.g. hall-a, roof")
        self.lat_edit = QLineEdit()
        self.lat_edit.setPlaceholderText("latitude")
        self.lon_edit = QLineEdit()
        self.lon_edit.setPlaceholderText("longitude")
        self.location_label_edit = QLineEdit()
        self.location_label_edit.setPlaceholderText("e.g. Pump house 3")
        self.save_button = QPushButton("Save changes")
        self.save_button.setProperty("accent", True)
        self.save_status = QLabel("")
        self.save_status.setWordWrap(True)
        position = QHBoxLayout()
        position.addWidget(self.lat_edit)
        position.addWidget(self.lon_edit)
        identity = QGroupBox("Identity")
        form = QFormLayout(identity)
        form.addRow("Name", self.name_edit)
        form.addRow("Tags", self.tags_edit)
        form.addRow("Location", position)
        form.addRow("Place", self.location_label_edit)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_status, 1)
        buttons.addWidget(self.save_button)
        form.addRow(buttons)
        self.save_button.clicked.connect(self.save)
        for edit in (self.name_edit, self.tags_edit, self.lat_edit, self.lon_edit,
                     self.location_label_edit):
            edit.returnPressed.connect(self.save)
        return identity

    def _build_info(self) -> QGroupBox:
        self.info_labels: dict[str, QLabel] = {}
        info = QGroupBox("Device")
        info_form = QFormLayout(info)
        for key, title in INFO_ROWS:
            label = QLabel("—")
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            self.info_labels[key] = label
            info_form.addRow(title, label)
        return info

    # -- state ---------------------------------------------------------------------------
    def bind(self, api: DevicesApi | None, actor: Actor,
             capabilities: DeviceCapabilities | None) -> None:
        self.api, self.actor, self.capabilities = api, actor, capabilities
        self.update_availability()

    def update_availability(self) -> None:
        may_update = self.actor.can(Permission.DEVICE_UPDATE)
        self.save_button.setEnabled(may_update)
        self.save_button.setToolTip("" if may_update
                                    else self.actor.denial(Permission.DEVICE_UPDATE))

    def clear(self) -> None:
        self._background.cancel(LINK)
        self.device = None
        self.loaded_device_id = None
        self._last_seen_s = None
        self.save_status.setText("")
        for row in self._value_rows.values():
            for widget in (row.name, row.value, row.spark):
                self.values_grid.removeWidget(widget)
                widget.deleteLater()
        self._value_rows.clear()
        self.values_empty.setVisible(True)
        self.info_labels["link"].setText("—")

    def show_identity(self, device: Device, *, keep_edits: bool = False) -> None:
        previous = self.device
        self.device = device
        if not (keep_edits and previous is not None and self._form_dirty(previous)):
            self.name_edit.setText(device.name)
            self.tags_edit.setText(", ".join(sorted(device.tags)))
            loc = device.location
            self.lat_edit.setText("" if loc is None else f"{loc.latitude:.6g}")
            self.lon_edit.setText("" if loc is None else f"{loc.longitude:.6g}")
            self.location_label_edit.setText("" if loc is None else loc.label)
        info = self.info_labels
        info["device_id"].setText(device.device_id)
        info["type"].setText(device.device_type)
        info["organization"].setText(device.organization)
        info["firmware"].setText(device.firmware_version or "—")
        if previous is None or previous.device_id != device.device_id:
            self._last_seen_s = None
        self.saw(device.last_seen)
        info["created"].setText(local_time(device.created_at))

    def show_details(self, details: DeviceDetails) -> None:
        self.loaded_device_id = details.device.device_id
        # The registry's last_seen is written back in batches (every 30 s);
        # the newest stored reading is fresher.
        self.saw(max((r.ts for r in details.latest.values()), default=None))
        for metric in sorted(details.latest):
            row = self._value_row(metric)
            row.set_value(details.latest[metric])
            series = details.series.get(metric)
            if series is not None:
                row.spark.set_series(series.ts_ms, series.value)
        if details.link is not None:
            self._show_link(details.link)
        elif self.capabilities is not None and not self.capabilities.link_stats:
            self.info_labels["link"].setText("not available on this backend")

    # -- editing -------------------------------------------------------------------------
    def _form_dirty(self, device: Device) -> bool:
        loc = device.location
        return (self.name_edit.text() != device.name
                or self.tags_edit.text() != ", ".join(sorted(device.tags))
                or self.location_label_edit.text() != ("" if loc is None else loc.label))

    def edited_device(self) -> Device:
        """The device as the form describes it; raises ValidationError."""
        if self.device is None:
            raise ValidationError("no device is shown")
        lat, lon = self.lat_edit.text().strip(), self.lon_edit.text().strip()
        location: tuple[float, float, str] | None = None
        if lat or lon:
            try:
                location = (float(lat), float(lon), self.location_label_edit.text())
            except ValueError:
                raise ValidationError(
                    "latitude and longitude must both be numbers (or both empty)") from None
        elif self.location_label_edit.text().strip():
            raise ValidationError("a place name needs a latitude and longitude")
        return edit_device(self.device, name=self.name_edit.text(),
                           tags=self.tags_edit.text().split(","), location=location)

    def save(self) -> None:
        """Save the form, from the version it was loaded at: an edit someone
        saved meanwhile is reported, not overwritten."""
        api = self.api
        try:
            edited = self.edited_device()
        except ValidationError as exc:
            show_status(self.save_status, str(exc), "error")
            return
        if api is None:
            return
        self.save_button.setEnabled(False)
        show_status(self.save_status, "Saving…", "secondary")

        def done(device: Device) -> None:
            self.update_availability()
            if self.device is None or device.device_id != self.device.device_id:
                return
            self.show_identity(device)
            show_status(self.save_status, "Saved", "success")
            safe_emit(self.saved, device)

        def failed(exc: BaseException) -> None:
            self.update_availability()
            show_status(self.save_status, f"Not saved: {exc}", "error")

        self._background.start(lambda: api.update(edited), done, failed)

    # -- live ----------------------------------------------------------------------------
    def _show_link(self, link: LinkStats) -> None:
        self.info_labels["link"].setText(
            f"{link.received:,} received · {link.lost:,} lost "
            f"({link.loss_ratio:.1%}) · {link.duplicates:,} duplicates · "
            f"{link.out_of_order:,} out of order · {plural(link.reboots, 'reboot')}"
            + (f" · {link.hub_lost:,} lost while the hub was away" if link.hub_lost else ""))

    def reload_link(self) -> None:
        """Re-read the shown device's link statistics."""
        api, device_id = self.api, self.loaded_device_id
        if api is None or device_id is None or self.device is None \
                or device_id != self.device.device_id \
                or self.capabilities is None or not self.capabilities.link_stats:
            return

        def done(link: LinkStats | None) -> None:
            if link is not None and device_id == self.loaded_device_id:
                self._show_link(link)

        # a failed read is tried again on the next tick
        self._background.start(lambda: api.link(device_id), done, lambda _exc: None, key=LINK)

    def _value_row(self, metric: str) -> ValueRow:
        row = self._value_rows.get(metric)
        if row is None:
            self.values_empty.setVisible(False)
            row = ValueRow(metric)
            self._value_rows[metric] = row
            at = len(self._value_rows)
            self.values_grid.addWidget(row.name, at, 0)
            self.values_grid.addWidget(row.value, at, 1)
            self.values_grid.addWidget(row.spark, at, 2)
        return row

    def add_readings(self, readings: Iterable[Reading]) -> None:
        by_metric: dict[str, list[Reading]] = {}
        for reading in readings:
            by_metric.setdefault(reading.metric, []).append(reading)
        for metric, items in by_metric.items():
            items.sort(key=lambda r: r.ts)
            row = self._value_row(metric)
            row.set_value(items[-1])
            row.spark.append((r.ts.timestamp(), r.value) for r in items)
        if by_metric and self.device is not None:
            self.saw(max(r.ts for items in by_metric.values() for r in items))

    def saw(self, moment: datetime | None) -> None:
        """The device was heard at ``moment``: keep the newest, show its age."""
        if moment is not None:
            ts = moment.timestamp()
            if self._last_seen_s is None or ts > self._last_seen_s:
                self._last_seen_s = ts
                self.info_labels["last_seen"].setToolTip(local_time(moment))
        self._tick_last_seen()

    def _tick_last_seen(self) -> None:
        """Every second: "Last seen" counts up between readings, as it does in the list."""
        if self.device is not None:
            self.info_labels["last_seen"].setText(
                relative_time(self._last_seen_s, utcnow().timestamp()))

    def value_metrics(self) -> list[str]:
        return sorted(self._value_rows)

    def sparkline(self, metric: str) -> Sparkline:
        return self._value_rows[metric].spark
