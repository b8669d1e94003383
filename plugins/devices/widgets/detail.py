"""The device detail panel: identity, live values, shadow, commands, alerts.

Every call to the backend runs through BackgroundCall; results and errors come
back on the GUI thread and are shown in the panel. A port the backend does not
offer (``None``) disables its controls with a tooltip that says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from console.theme import current_colors
from console.widgets.background import BackgroundCall
from console.widgets.role_note import RoleNote
from console.widgets.signals import safe_emit
from core.errors import ConcurrentModification, ValidationError
from core.identity import local_owner
from core.model import Alert, CommandRecord, Device, DeviceStatus, Reading
from core.model.events import (
    AlertChanged,
    CommandChanged,
    DeviceChanged,
    FleetEvent,
    ShadowChanged,
    TelemetryReceived,
)
from core.model.link import LinkStats
from core.model.roles import Actor, Permission
from core.model.timeutil import utcnow
from core.ports.backend import Backend
from core.ports.commands import CommandOutcome, CommandResult
from core.ports.shadows import ShadowDocument
from core.services.fleet_health import health_of, status_label
from core.text import plural
from plugins.devices import service
from plugins.devices.widgets.fleet_model import STATUS_COLOURS, relative_time

NOT_AVAILABLE = "Not available on the {backend} backend"
SPARK_POINTS = 2000  # points kept per sparkline
LINK_REFRESH_MS = 5_000  # link statistics re-read while a device is shown


#: The detail panel's actions a role may not allow, for the note on the panel.
ROLE_GATED = (("Save changes", Permission.DEVICE_UPDATE),
              ("Decommission…", Permission.DEVICE_DECOMMISSION),
              ("Update desired", Permission.DESIRED_STATE),
              ("Ping, Identify, Reboot…, Set interval", Permission.DEVICE_COMMAND))


def _local(ts: datetime | None) -> str:
    return "—" if ts is None else ts.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value} if prefix else {}


def _set_role(label: QLabel, role: str) -> None:
    label.setProperty("role", role)
    label.style().unpolish(label)
    label.style().polish(label)


class Sparkline(pg.PlotWidget):
    """A tiny line chart without axes: the last 15 minutes of one metric."""

    def __init__(self, parent: QWidget | None = None) -> None:
        colors = current_colors()
        super().__init__(parent, background=colors.surface)
        self.setFixedHeight(34)
        self.setMinimumWidth(120)
        self.hideAxis("left")
        self.hideAxis("bottom")
        self.setMouseEnabled(False, False)
        self.setMenuEnabled(False)
        self.hideButtons()
        self.getPlotItem().setContentsMargins(0, 2, 0, 2)
        self._curve = self.plot(pen=pg.mkPen(colors.accent, width=1.6), connect="finite")
        self._x = np.empty(0, dtype=np.float64)
        self._y = np.empty(0, dtype=np.float64)

    def set_series(self, ts_ms: np.ndarray, values: np.ndarray) -> None:
        self._x = np.asarray(ts_ms, dtype=np.float64)[-SPARK_POINTS:] / 1000.0
        self._y = np.asarray(values, dtype=np.float64)[-SPARK_POINTS:]
        self._redraw()

    def append(self, points: Iterable[tuple[float, float]]) -> None:
        pts = list(points)
        if not pts:
            return
        xs, ys = zip(*pts, strict=True)
        self._x = np.concatenate([self._x, np.asarray(xs)])[-SPARK_POINTS:]
        self._y = np.concatenate([self._y, np.asarray(ys)])[-SPARK_POINTS:]
        cutoff = utcnow().timestamp() - service.SPARKLINE_WINDOW.total_seconds()
        keep = self._x >= cutoff
        self._x, self._y = self._x[keep], self._y[keep]
        self._redraw()

    def point_count(self) -> int:
        return int(self._x.shape[0])

    def _redraw(self) -> None:
        self._curve.setData(*with_gaps(self._x, self._y))


def with_gaps(x: np.ndarray, y: np.ndarray, factor: float = 3.0
              ) -> tuple[np.ndarray, np.ndarray]:
    """A NaN after every silence longer than ``factor`` times the typical
    (median) interval, so a reboot or a restart shows as a hole in the line
    rather than a straight stroke bridging it (which would look like data)."""
    if x.size < 3:
        return x, y
    d = np.diff(x)
    gaps = np.flatnonzero(d > factor * max(float(np.median(d)), 1e-9))
    if gaps.size == 0:
        return x, y
    return (np.insert(x, gaps + 1, (x[gaps] + x[gaps + 1]) / 2),
            np.insert(np.asarray(y, dtype=np.float64), gaps + 1, np.nan))


# Metrics read in whole units, as the fleet table shows them.
UNITS = {"rssi": ("dBm", 0), "battery_pct": ("%", 0)}


def format_value(metric: str, value: float) -> str:
    """"-71 dBm" rather than "-70.53": a radio's signal is read in whole dBm."""
    unit = UNITS.get(metric)
    if unit is None:
        return f"{value:.4g}"
    suffix, digits = unit
    return f"{value:.{digits}f} {suffix}"


class ValueRow:
    def __init__(self, metric: str) -> None:
        self.name = QLabel(metric)
        self.name.setProperty("role", "secondary")
        self.value = QLabel("—")
        self.value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.value.setMinimumWidth(70)
        self.value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.spark = Sparkline()

    def set_value(self, reading: Reading) -> None:
        self.value.setText(format_value(reading.metric, reading.value))
        self.value.setToolTip(_local(reading.ts))


class DeviceDetail(QWidget):
    """Everything about one device. ``show_device(id)`` loads it in the background;
    ``apply_events(batch)`` keeps it live; ``device_changed`` tells the list when
    the console itself changed the device (saved, decommissioned)."""

    device_changed = Signal(object)  # Device
    close_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("DeviceDetail")
        self.backend: Backend | None = None
        #: who acts: every change goes through DeviceService with it (role check, audit)
        self.actor: Actor = local_owner()
        self.device: Device | None = None
        self._alerts_by_id: dict[str, Alert] = {}  # shown in the Alerts tab: the health
        self.shadow: ShadowDocument | None = None
        self._last_seen_s: float | None = None
        self._clock = QTimer(self)
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self._tick_last_seen)
        self._clock.start()
        # Link statistics are counted by the hub, not carried by live events:
        # re-read them so a reboot or a loss shows while the detail stays open.
        self._link_timer = QTimer(self)
        self._link_timer.setInterval(LINK_REFRESH_MS)
        self._link_timer.timeout.connect(self.reload_link)
        self._link_timer.start()
        self._link_loading = False
        self._background = BackgroundCall(self)
        self._generation = 0  # results of an older show_device are ignored
        #: the id whose details (values, alerts, history) finished loading
        self.loaded_device_id: str | None = None
        self._value_rows: dict[str, ValueRow] = {}
        self._history: dict[str, QTreeWidgetItem] = {}
        # The round trip this console measured per request: the banner and
        # the table show this one number, not a second one from stored times.
        self._latency: dict[str, float] = {}
        #: replaced in tests; returns True when the person confirms
        self.confirm: Callable[[str, str], bool] = self._ask

        self.title = QLabel("No device selected")
        self.title.setProperty("role", "title")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.subtitle = QLabel("")
        self.subtitle.setProperty("role", "secondary")
        self.status_pill = QLabel("")
        self.status_pill.setObjectName("StatusPill")
        self.decommission_button = QPushButton("Decommission…")
        self.decommission_button.setToolTip("Retire this device: it stays in the registry "
                                            "as decommissioned")
        self.close_button = QPushButton("Close")
        self.close_button.setToolTip("Close the detail panel (Esc)")
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setVisible(False)
        self.role_note = RoleNote(self.actor, ROLE_GATED)

        header = QHBoxLayout()
        names = QVBoxLayout()
        names.setSpacing(2)
        title_row = QHBoxLayout()
        title_row.addWidget(self.title)
        title_row.addWidget(self.status_pill)
        title_row.addStretch(1)
        names.addLayout(title_row)
        names.addWidget(self.subtitle)
        header.addLayout(names, 1)
        header.addWidget(self.decommission_button, 0, Qt.AlignmentFlag.AlignTop)
        header.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self._build_overview(), "Overview")
        self.tabs.addTab(self._build_shadow(), "Shadow")
        self.tabs.addTab(self._build_commands(), "Commands")
        self.tabs.addTab(self._build_alerts(), "Alerts")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 8, 8)
        layout.addLayout(header)
        layout.addWidget(self.role_note)
        layout.addWidget(self.message)
        layout.addWidget(self.tabs, 1)

        self.decommission_button.clicked.connect(self.decommission)
        self.close_button.clicked.connect(self.close_requested)
        self._set_enabled(False)

    # -- building ------------------------------------------------------------------------
    def _build_overview(self) -> QWidget:
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

        self.info_labels: dict[str, QLabel] = {}
        info = QGroupBox("Device")
        info_form = QFormLayout(info)
        for key, title in (("device_id", "Device id"), ("type", "Type"),
                           ("organization", "Organization"), ("firmware", "Firmware"),
                           ("last_seen", "Last seen"), ("created", "Registered"),
                           ("link", "Link")):
            label = QLabel("—")
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            self.info_labels[key] = label
            info_form.addRow(title, label)

        values = QGroupBox("Latest values · last 15 min")
        self.values_grid = QGridLayout(values)
        self.values_grid.setColumnStretch(2, 1)
        self.values_empty = QLabel("No telemetry yet")
        self.values_empty.setProperty("role", "secondary")
        self.values_grid.addWidget(self.values_empty, 0, 0, 1, 3)

        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 8, 4, 0)
        layout.addWidget(values)
        layout.addWidget(identity)
        layout.addWidget(info)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(body)

        self.save_button.clicked.connect(self.save)
        for edit in (self.name_edit, self.tags_edit, self.lat_edit, self.lon_edit,
                     self.location_label_edit):
            edit.returnPressed.connect(self.save)
        return scroll

    def _build_shadow(self) -> QWidget:
        self.shadow_version = QLabel("")
        self.shadow_version.setProperty("role", "secondary")
        self.shadow_reload = QPushButton("Reload")
        self.shadow_tree = QTreeWidget()
        self.shadow_tree.setHeaderLabels(["Key", "Desired", "Reported"])
        self.shadow_tree.setRootIsDecorated(False)
        self.shadow_tree.setAlternatingRowColors(True)
        self.shadow_tree.header().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.shadow_editor = QPlainTextEdit()
        self.shadow_editor.setPlaceholderText('{"interval": 30}')
        self.shadow_editor.setTabChangesFocus(True)
        font = self.shadow_editor.font()
        font.setFamily("monospace")
        font.setStyleHint(font.StyleHint.Monospace)
        self.shadow_editor.setFont(font)
        self.shadow_error = QLabel("")
        self.shadow_error.setWordWrap(True)
        self.shadow_error.setVisible(False)
        self.shadow_apply = QPushButton("Update desired")
        self.shadow_apply.setProperty("accent", True)

        top = QHBoxLayout()
        top.addWidget(self.shadow_version, 1)
        top.addWidget(self.shadow_reload)
        editor_box = QGroupBox("Edit desired state (JSON; null removes a key)")
        editor_layout = QVBoxLayout(editor_box)
        editor_layout.addWidget(self.shadow_editor)
        editor_layout.addWidget(self.shadow_error)
        apply_row = QHBoxLayout()
        apply_row.addStretch(1)
        apply_row.addWidget(self.shadow_apply)
        editor_layout.addLayout(apply_row)

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.shadow_tree)
        split.addWidget(editor_box)
        split.setSizes([240, 200])
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 8, 4, 0)
        layout.addLayout(top)
        layout.addWidget(split, 1)

        self.shadow_reload.clicked.connect(self.reload_shadow)
        self.shadow_apply.clicked.connect(self.apply_desired)
        self.shadow_editor.textChanged.connect(self._validate_desired)
        return page

    def _build_commands(self) -> QWidget:
        self.ping_button = QPushButton("Ping")
        self.ping_button.setToolTip("Round trip to the device; shows the latency")
        self.identify_button = QPushButton("Identify")
        self.identify_button.setToolTip("Blink the device's LED so it can be found on site")
        self.reboot_button = QPushButton("Reboot…")
        self.interval_spin = QSpinBox()
        self.interval_spin.setRange(1, 3600)  # what devices accept (docs/protocol.md)
        self.interval_spin.setValue(30)
        self.interval_spin.setSuffix(" s")
        self.interval_button = QPushButton("Set interval")
        self.interval_button.setToolTip("Telemetry reporting interval")
        self.command_status = QLabel("")
        self.command_status.setProperty("role", "secondary")
        self.command_status.setWordWrap(True)
        self.command_list = QTreeWidget()
        self.command_list.setHeaderLabels(["Time", "Command", "Result", "Latency", "Details"])
        self.command_list.setRootIsDecorated(False)
        self.command_list.setAlternatingRowColors(True)
        self.command_list.header().setStretchLastSection(True)

        row = QHBoxLayout()
        for button in (self.ping_button, self.identify_button, self.reboot_button):
            row.addWidget(button)
        row.addSpacing(16)
        row.addWidget(self.interval_spin)
        row.addWidget(self.interval_button)
        row.addStretch(1)
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 8, 4, 0)
        layout.addLayout(row)
        layout.addWidget(self.command_status)
        layout.addWidget(self.command_list, 1)

        self.ping_button.clicked.connect(lambda: self.send_command("ping"))
        self.identify_button.clicked.connect(lambda: self.send_command("identify"))
        self.reboot_button.clicked.connect(self.reboot)
        self.interval_button.clicked.connect(
            lambda: self.send_command("set-interval", {"seconds": self.interval_spin.value()}))
        return page

    def _build_alerts(self) -> QWidget:
        self.alert_list = QTreeWidget()
        self.alert_list.setHeaderLabels(["Raised", "Severity", "State", "Rule", "Message"])
        self.alert_list.setRootIsDecorated(False)
        self.alert_list.setAlternatingRowColors(True)
        self.alert_list.header().setStretchLastSection(True)
        self.alerts_empty = QLabel("No alerts for this device")
        self.alerts_empty.setProperty("role", "secondary")
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 8, 4, 0)
        layout.addWidget(self.alerts_empty)
        layout.addWidget(self.alert_list, 1)
        return page

    # -- public API ----------------------------------------------------------------------
    def set_backend(self, backend: Backend | None, actor: Actor | None = None) -> None:
        self.backend = backend
        if actor is not None:
            self.actor = actor
        self._update_availability()

    @property
    def device_id(self) -> str | None:
        return None if self.device is None else self.device.device_id

    def show_device(self, device_id: str, device: Device | None = None) -> None:
        """Show ``device`` at once if given (from the list), then load the rest."""
        self._generation += 1
        generation = self._generation
        self._clear()
        if device is not None:
            self._show_identity(device)
        else:
            self.title.setText(device_id)
        self._set_enabled(True)
        backend = self.backend
        if backend is None:
            self._show_message("Backend not ready yet", "secondary")
            return
        self._background.start(
            lambda: service.load_details(backend, device_id),
            lambda d: self._details_loaded(generation, d),
            lambda exc: self._failed(generation, "Could not load the device", exc))
        self.reload_shadow()

    def apply_events(self, events: Iterable[FleetEvent]) -> None:
        """Live updates for the shown device (a LiveBridge batch)."""
        device_id = self.device_id
        if device_id is None:
            return
        for event in events:
            match event:
                case TelemetryReceived(device_id=shown) if shown == device_id:
                    self._add_readings(event.readings)
                case DeviceChanged(device=device) if device.device_id == device_id:
                    self._show_identity(device, keep_edits=True)
                case ShadowChanged(document=document) if document.device_id == device_id:
                    self._show_shadow(document, keep_editor=True)
                case CommandChanged(record=record) if record.device_id == device_id:
                    self._show_command_record(record)
                case AlertChanged(alert=alert) if alert.device_id == device_id:
                    self._upsert_alert(alert)

    # -- identity ------------------------------------------------------------------------
    def _show_identity(self, device: Device, *, keep_edits: bool = False) -> None:
        previous = self.device
        self.device = device
        self.title.setText(device.display_name)
        self.subtitle.setText(f"{device.device_id}  ·  {device.device_type}  ·  "
                              f"{device.organization}")
        self._paint_status()
        dirty = keep_edits and previous is not None and self._form_dirty(previous)
        if not dirty:
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
        self._saw(device.last_seen)
        info["created"].setText(_local(device.created_at))
        retired = device.status is DeviceStatus.DECOMMISSIONED
        self.decommission_button.setEnabled(not retired and self.backend is not None
                                            and self.actor.can(Permission.DEVICE_DECOMMISSION))
        self.decommission_button.setToolTip(
            "Already decommissioned" if retired else
            self._denied(Permission.DEVICE_DECOMMISSION) or
            "Retire this device: it stays in the registry as decommissioned")
        self._update_availability()

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
        return service.edit_device(self.device, name=self.name_edit.text(),
                                   tags=self.tags_edit.text().split(","), location=location)

    def save(self) -> None:
        backend, actor = self.backend, self.actor
        try:
            edited = self.edited_device()
        except ValidationError as exc:
            self._status(self.save_status, str(exc), "error")
            return
        if backend is None:
            return
        self.save_button.setEnabled(False)
        self._status(self.save_status, "Saving…", "secondary")
        generation = self._generation

        def done(device: Device) -> None:
            self.save_button.setEnabled(self.actor.can(Permission.DEVICE_UPDATE))
            if generation != self._generation:
                return
            self._show_identity(device)
            self._status(self.save_status, "Saved", "success")
            safe_emit(self.device_changed, device)

        def failed(exc: BaseException) -> None:
            self.save_button.setEnabled(self.actor.can(Permission.DEVICE_UPDATE))
            self._status(self.save_status, f"Not saved: {exc}", "error")

        self._background.start(lambda: service.save_device(backend, edited, actor), done, failed)

    def decommission(self) -> None:
        device, backend = self.device, self.backend
        if device is None or backend is None:
            return
        if not self.confirm(
            "Decommission device",
            f"Decommission {device.display_name} ({device.device_id})?\n\n"
            "It stays in the registry as decommissioned and its status is no longer "
            "updated; register it again to bring it back."):
            return
        self.decommission_button.setEnabled(False)
        actor = self.actor

        def done(updated: Device) -> None:
            self._show_identity(updated)
            self._show_message(f"{updated.device_id} decommissioned", "success")
            safe_emit(self.device_changed, updated)

        self._background.start(
            lambda: service.decommission(backend, device.device_id, actor), done,
            lambda exc: self._failed(self._generation, "Could not decommission", exc))

    # -- details -------------------------------------------------------------------------
    def _details_loaded(self, generation: int, details: service.DeviceDetails) -> None:
        if generation != self._generation:
            return
        self.loaded_device_id = details.device.device_id
        self._show_identity(details.device)
        # The registry's last_seen is written back in batches (every 30 s);
        # the newest stored reading is fresher.
        self._saw(max((r.ts for r in details.latest.values()), default=None))
        for metric in sorted(details.latest):
            row = self._value_row(metric)
            row.set_value(details.latest[metric])
            series = details.series.get(metric)
            if series is not None:
                row.spark.set_series(series.ts_ms, series.value)
        if details.link is not None:
            self._show_link(details.link)
        elif self.backend is not None and self.backend.link_stats is None:
            self.info_labels["link"].setText("not available on this backend")
        self.alert_list.clear()
        self._alerts_by_id.clear()
        for alert in details.alerts:
            self._upsert_alert(alert)
        self._refresh_alert_empty()
        for record in reversed(details.commands):
            self._show_command_record(record)
        if details.errors:
            self._show_message("; ".join(f"{k}: {v}" for k, v in details.errors.items()),
                               "error")

    def _show_link(self, link: LinkStats) -> None:
        self.info_labels["link"].setText(
            f"{link.received:,} received · {link.lost:,} lost "
            f"({link.loss_ratio:.1%}) · {link.duplicates:,} duplicates · "
            f"{link.out_of_order:,} out of order · {plural(link.reboots, 'reboot')}")

    def reload_link(self) -> None:
        """Re-read the shown device's link statistics (one read at a time)."""
        backend, device_id = self.backend, self.loaded_device_id
        if backend is None or backend.link_stats is None or device_id is None \
                or device_id != self.device_id or self._link_loading:
            return
        stats = backend.link_stats
        self._link_loading = True
        generation = self._generation

        def done(link: LinkStats | None) -> None:
            self._link_loading = False
            if generation == self._generation and link is not None:
                self._show_link(link)

        def failed(_exc: BaseException) -> None:
            self._link_loading = False  # the next tick tries again

        self._background.start(lambda: stats.get(device_id), done, failed)

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

    def _add_readings(self, readings: Iterable[Reading]) -> None:
        by_metric: dict[str, list[Reading]] = {}
        for reading in readings:
            by_metric.setdefault(reading.metric, []).append(reading)
        for metric, items in by_metric.items():
            items.sort(key=lambda r: r.ts)
            row = self._value_row(metric)
            row.set_value(items[-1])
            row.spark.append((r.ts.timestamp(), r.value) for r in items)
        if readings and self.device is not None:
            newest = max((r.ts for items in by_metric.values() for r in items), default=None)
            if newest is not None:
                self._saw(newest)

    def _saw(self, moment: datetime | None) -> None:
        """The device was heard at ``moment``: keep the newest, show its age."""
        if moment is not None:
            ts = moment.timestamp()
            if self._last_seen_s is None or ts > self._last_seen_s:
                self._last_seen_s = ts
                self.info_labels["last_seen"].setToolTip(_local(moment))
        self._tick_last_seen()

    def _tick_last_seen(self) -> None:
        """Every second: "Last seen" counts up between readings, as it does in the list."""
        label = self.info_labels.get("last_seen")
        if label is not None and self.device is not None:
            label.setText(relative_time(self._last_seen_s, utcnow().timestamp()))

    def value_metrics(self) -> list[str]:
        return sorted(self._value_rows)

    def sparkline(self, metric: str) -> Sparkline:
        return self._value_rows[metric].spark

    # -- shadow --------------------------------------------------------------------------
    def reload_shadow(self) -> None:
        backend, device_id = self.backend, self.device_id
        if backend is None or device_id is None or backend.shadows is None:
            return
        generation = self._generation
        self.shadow_version.setText("Loading shadow…")
        self._background.start(
            lambda: service.load_shadow(backend, device_id),
            lambda doc: self._if_current(generation, self._show_shadow, doc),
            lambda exc: self._if_current(generation, self._shadow_failed, exc))

    def _if_current(self, generation: int, fn: Callable[[Any], Any], arg: Any) -> None:
        if generation == self._generation:
            fn(arg)

    def _shadow_failed(self, exc: BaseException) -> None:
        self.shadow_version.setText("Shadow could not be loaded")
        self._status(self.shadow_error, str(exc), "error")

    def _show_shadow(self, document: ShadowDocument, *, keep_editor: bool = False) -> None:
        editor_dirty = keep_editor and self.shadow is not None and (
            self.shadow_editor.toPlainText().strip()
            != json.dumps(self.shadow.desired, indent=2, sort_keys=True).strip())
        self.shadow = document
        updated = f" · updated {_local(document.updated_at)}" if document.updated_at else ""
        delta = document.delta
        pending = f" · {len(_flatten(delta))} pending change(s)" if delta else " · in sync"
        self.shadow_version.setText(f"Version {document.version}{updated}{pending}")
        desired, reported = _flatten(document.desired), _flatten(document.reported)
        highlight = QBrush(QColor(current_colors().warning))
        self.shadow_tree.clear()
        for key in sorted(set(desired) | set(reported)):
            want = json.dumps(desired[key]) if key in desired else ""
            have = json.dumps(reported[key]) if key in reported else ""
            item = QTreeWidgetItem([key, want, have])
            if key in desired and desired.get(key) != reported.get(key):
                for col in range(3):
                    item.setForeground(col, highlight)
                item.setToolTip(1, "Desired differs from reported: the device has not "
                                   "applied this yet")
                font = item.font(0)
                font.setBold(True)
                item.setFont(0, font)
            self.shadow_tree.addTopLevelItem(item)
        if not editor_dirty:
            self.shadow_editor.setPlainText(json.dumps(document.desired, indent=2,
                                                       sort_keys=True))
        self._validate_desired()

    def shadow_rows(self) -> list[tuple[str, str, str, bool]]:
        """(key, desired, reported, differs) as shown; for tests and screenshots."""
        out = []
        for i in range(self.shadow_tree.topLevelItemCount()):
            item = self.shadow_tree.topLevelItem(i)
            out.append((item.text(0), item.text(1), item.text(2), item.font(0).bold()))
        return out

    def _validate_desired(self) -> dict[str, Any] | None:
        try:
            value = service.parse_desired(self.shadow_editor.toPlainText())
        except ValidationError as exc:
            self._status(self.shadow_error, str(exc), "error")
            self.shadow_apply.setEnabled(False)
            return None
        self.shadow_error.setVisible(False)
        self.shadow_apply.setEnabled(self.backend is not None
                                     and self.backend.shadows is not None
                                     and self.actor.can(Permission.DESIRED_STATE))
        return value

    def apply_desired(self) -> None:
        backend, device_id = self.backend, self.device_id
        desired = self._validate_desired()
        if desired is None or backend is None or device_id is None or backend.shadows is None:
            return
        actor = self.actor
        # keys removed in the editor are deleted (IoT Core: null deletes)
        if self.shadow is not None:
            for key in self.shadow.desired:
                desired.setdefault(key, None)
        expected = self.shadow.version if self.shadow is not None else None
        self.shadow_apply.setEnabled(False)
        self._status(self.shadow_error, "Sending…", "secondary")

        def done(document: ShadowDocument) -> None:
            self._show_shadow(document)
            self._status(self.shadow_error, f"Desired state saved (version {document.version})",
                         "success")

        def failed(exc: BaseException) -> None:
            self.shadow_apply.setEnabled(self.actor.can(Permission.DESIRED_STATE))
            if isinstance(exc, ConcurrentModification):
                text = (f"Version conflict: the shadow changed since version {expected} "
                        f"was loaded ({exc}). Press Reload, check the new state, and apply "
                        "your change again.")
            else:
                text = f"Not saved: {exc}"
            self._status(self.shadow_error, text, "error")

        self._background.start(
            lambda: service.update_desired(backend, device_id, desired, actor,
                                           expected_version=expected),
            done, failed)

    # -- commands ------------------------------------------------------------------------
    def reboot(self) -> None:
        device = self.device
        if device is None:
            return
        if self.confirm("Reboot device",
                        f"Reboot {device.display_name} ({device.device_id})?\n\n"
                        "It stops reporting until it is back up."):
            self.send_command("reboot")

    def send_command(self, command: str, params: dict[str, Any] | None = None,
                     *, timeout_s: float = 10.0) -> None:
        backend, device_id = self.backend, self.device_id
        if backend is None or device_id is None or backend.commands is None:
            return
        actor = self.actor
        local_id = f"local-{command}-{utcnow().timestamp()}"
        item = QTreeWidgetItem([_local(utcnow()).split(" ")[1], command, "sending…", "",
                                json.dumps(params) if params else ""])
        self.command_list.insertTopLevelItem(0, item)
        self._history[local_id] = item
        self._status(self.command_status, f"{command} sent to {device_id}…", "secondary")

        def run() -> CommandResult:
            future = service.send_command(backend, device_id, command, actor, params,
                                          timeout_s=timeout_s)
            return future.result(timeout=timeout_s + 5)

        def done(result: CommandResult) -> None:
            self._history.pop(local_id, None)
            existing = self._history.get(result.request_id)
            if existing is not None and existing is not item:
                index = self.command_list.indexOfTopLevelItem(item)
                self.command_list.takeTopLevelItem(index)
                item_ = existing
            else:
                item_ = item
                self._history[result.request_id] = item
            if result.latency_ms is not None:
                self._latency[result.request_id] = result.latency_ms
            self._fill_result(item_, result.outcome.value, result.latency_ms,
                              json.dumps(result.payload) if result.payload else "")
            latency = f" in {result.latency_ms:.0f} ms" if result.latency_ms is not None else ""
            role = "success" if result.outcome is CommandOutcome.OK else "error"
            self._status(self.command_status, f"{command}: {result.outcome.value}{latency}",
                         role)

        def failed(exc: BaseException) -> None:
            self._fill_result(item, "error", None, str(exc) or type(exc).__name__)
            self._status(self.command_status, f"{command} failed: {exc or type(exc).__name__}",
                         "error")

        self._background.start(run, done, failed)

    def _fill_result(self, item: QTreeWidgetItem, outcome: str, latency_ms: float | None,
                     details: str) -> None:
        item.setText(2, outcome)
        item.setText(3, "" if latency_ms is None else f"{latency_ms:.0f} ms")
        if details:
            item.setText(4, details)
        colours = current_colors()
        colour = {"ok": colours.success, "timeout": colours.warning}.get(outcome, colours.danger)
        if outcome in ("pending", "sent", "sending…"):
            colour = colours.secondary
        item.setForeground(2, QBrush(QColor(colour)))

    def _show_command_record(self, record: CommandRecord) -> None:
        item = self._history.get(record.request_id)
        if item is None:
            item = QTreeWidgetItem([_local(record.created_at).split(" ")[1], record.command,
                                    "", "", json.dumps(record.params) if record.params else ""])
            item.setToolTip(0, _local(record.created_at))
            self.command_list.insertTopLevelItem(0, item)
            self._history[record.request_id] = item
        latency = self._latency.get(record.request_id)
        if latency is None and record.completed_at is not None:
            # Sent from elsewhere (the CLI, another console): the stored times.
            latency = (record.completed_at - record.created_at).total_seconds() * 1000
        details = record.error or (json.dumps(record.response) if record.response else "")
        self._fill_result(item, record.status.value, latency, details)

    def command_rows(self) -> list[tuple[str, str, str]]:
        out = []
        for i in range(self.command_list.topLevelItemCount()):
            item = self.command_list.topLevelItem(i)
            out.append((item.text(1), item.text(2), item.text(3)))
        return out

    # -- alerts --------------------------------------------------------------------------
    def _paint_status(self) -> None:
        """The pill shows the device's health (core.services.fleet_health), as
        the list does; ``self.device`` keeps the registry's link status."""
        if self.device is None:
            return
        status = health_of(self.device, self._alerts_by_id.values()).status
        colour = STATUS_COLOURS.get(status.value, "#6b7280")
        self.status_pill.setText(status_label(status).upper())
        self.status_pill.setStyleSheet(
            f"QLabel#StatusPill {{ color: white; background: {colour}; border-radius: 8px;"
            " padding: 1px 8px; font-weight: 600; font-size: 11px; }")

    def _upsert_alert(self, alert: Alert) -> None:
        self._alerts_by_id[alert.alert_id] = alert
        self._paint_status()
        for i in range(self.alert_list.topLevelItemCount()):
            item = self.alert_list.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) == alert.alert_id:
                self._fill_alert(item, alert)
                return
        item = QTreeWidgetItem()
        item.setData(0, Qt.ItemDataRole.UserRole, alert.alert_id)
        self._fill_alert(item, alert)
        self.alert_list.insertTopLevelItem(0, item)
        self._refresh_alert_empty()

    def _fill_alert(self, item: QTreeWidgetItem, alert: Alert) -> None:
        colours = current_colors()
        item.setText(0, _local(alert.created_at))
        item.setText(1, alert.severity.value)
        item.setText(2, alert.state.value)
        item.setText(3, alert.rule_id)
        value = f" ({alert.value:g})" if alert.value is not None else ""
        item.setText(4, alert.message + value)
        sev = {"critical": colours.danger, "warning": colours.warning}.get(alert.severity.value)
        if sev:
            item.setForeground(1, QBrush(QColor(sev)))

    def _refresh_alert_empty(self) -> None:
        self.alerts_empty.setVisible(self.alert_list.topLevelItemCount() == 0)

    # -- helpers -------------------------------------------------------------------------
    def _clear(self) -> None:
        self.device = None
        self.loaded_device_id = None
        self.message.setVisible(False)
        self.save_status.setText("")
        self.shadow = None
        self.shadow_tree.clear()
        self.shadow_editor.blockSignals(True)
        self.shadow_editor.setPlainText("")
        self.shadow_editor.blockSignals(False)
        self.shadow_error.setVisible(False)
        self.shadow_version.setText("")
        self.command_list.clear()
        self._history.clear()
        self._latency.clear()
        self._last_seen_s = None
        self.command_status.setText("")
        self.alert_list.clear()
        self._alerts_by_id.clear()
        self._refresh_alert_empty()
        for row in self._value_rows.values():
            for widget in (row.name, row.value, row.spark):
                self.values_grid.removeWidget(widget)
                widget.deleteLater()
        self._value_rows.clear()
        self.values_empty.setVisible(True)
        self.info_labels["link"].setText("—")

    def _set_enabled(self, on: bool) -> None:
        self.tabs.setEnabled(on)
        if not on:
            self.decommission_button.setEnabled(False)
        self._update_availability()

    def _update_availability(self) -> None:
        backend = self.backend
        name = backend.name if backend is not None else "current"
        why = NOT_AVAILABLE.format(backend=name)
        has_device = self.device is not None
        commands_ok = backend is not None and backend.commands is not None
        may_command = self.actor.can(Permission.DEVICE_COMMAND)
        for button in (self.ping_button, self.identify_button, self.reboot_button,
                       self.interval_button, self.interval_spin):
            button.setEnabled(commands_ok and has_device and may_command)
            if backend is not None and backend.commands is None:
                button.setToolTip(f"{why}: it has no command channel")
            elif not may_command:
                button.setToolTip(self._denied(Permission.DEVICE_COMMAND))
        shadows_ok = backend is not None and backend.shadows is not None
        may_desire = self.actor.can(Permission.DESIRED_STATE)
        self.shadow_editor.setReadOnly(not (shadows_ok and may_desire))
        self.shadow_reload.setEnabled(shadows_ok)
        self.shadow_apply.setEnabled(shadows_ok and has_device and may_desire)
        if not may_desire:
            self.shadow_apply.setToolTip(self._denied(Permission.DESIRED_STATE))
        may_update = self.actor.can(Permission.DEVICE_UPDATE)
        self.save_button.setEnabled(may_update)
        self.save_button.setToolTip(self._denied(Permission.DEVICE_UPDATE))
        if not self.actor.can(Permission.DEVICE_DECOMMISSION):
            self.decommission_button.setEnabled(False)
            self.decommission_button.setToolTip(self._denied(Permission.DEVICE_DECOMMISSION))
        self.role_note.set_actor(self.actor, ROLE_GATED)
        if backend is not None and backend.shadows is None:
            tip = f"{why}: it has no shadow service"
            for widget in (self.shadow_apply, self.shadow_reload, self.shadow_editor):
                widget.setToolTip(tip)
            self.shadow_version.setText(tip)
        if backend is not None and backend.commands is None:
            self.command_status.setText(f"{why}: it has no command channel")

    def _denied(self, permission: Permission) -> str:
        """The tooltip of a button the role does not allow ("" when allowed)."""
        return "" if self.actor.can(permission) else self.actor.denial(permission)

    def _status(self, label: QLabel, text: str, role: str) -> None:
        label.setText(text)
        _set_role(label, role)
        label.setVisible(bool(text))

    def _show_message(self, text: str, role: str) -> None:
        self._status(self.message, text, role)

    def _failed(self, generation: int, what: str, exc: BaseException) -> None:
        if generation != self._generation:
            return
        self._show_message(f"{what}: {exc}", "error")

    def _ask(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(
            self, title, text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes


def format_timestamp(ts: datetime | None) -> str:
    return "" if ts is None else ts.astimezone(UTC).isoformat(timespec="seconds")
