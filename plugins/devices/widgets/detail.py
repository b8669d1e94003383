"""The device detail panel: a header (name, health, Decommission, Close) over
four tabs, one module each: Overview (values, identity, link), Shadow,
Commands and Alerts.

Everything is read and changed through ``context.api.devices`` on worker
threads (BackgroundCall); a newer ``show_device`` supersedes the answers of
an older one. What the backend cannot do (no command channel, no shadows) and
what the person's role may not do is greyed out with a tooltip that says why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from console.widgets.background import BackgroundCall
from console.widgets.role_note import RoleNote
from console.widgets.signals import safe_emit
from core.identity import local_owner
from core.model import Device, DeviceStatus
from core.model.events import (
    AlertChanged,
    CommandChanged,
    DeviceChanged,
    FleetEvent,
    ShadowChanged,
    TelemetryReceived,
)
from core.model.roles import Actor, Permission
from core.ports.fleet_api.devices import DeviceCapabilities, DeviceDetails, DevicesApi
from core.services.fleet_health import health_of, status_label
from plugins.devices.widgets.alerts_tab import AlertsTab
from plugins.devices.widgets.commands_tab import CommandsTab
from plugins.devices.widgets.fleet_model import STATUS_COLOURS
from plugins.devices.widgets.overview_tab import OverviewTab
from plugins.devices.widgets.panel_text import show_status
from plugins.devices.widgets.shadow_tab import ShadowTab

DETAILS = "details"  # BackgroundCall key: the newest show_device wins
LIVE_KEYS = "Ctrl+L"

#: The detail panel's actions a role may not allow, for the note on the panel.
ROLE_GATED = (("Save changes", Permission.DEVICE_UPDATE),
              ("Decommission…", Permission.DEVICE_DECOMMISSION),
              ("Update desired", Permission.DESIRED_STATE),
              ("Ping, Identify, Reboot…, Set interval", Permission.DEVICE_COMMAND))


class DeviceDetail(QWidget):
    """Everything about one device. ``show_device(id)`` loads it in the background;
    ``apply_events(batch)`` keeps it live; ``device_changed`` tells the list when
    the console itself changed the device (saved, decommissioned)."""

    device_changed = Signal(object)  # Device
    close_requested = Signal()
    #: the device id whose live chart the person asked for (the page opens it)
    live_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("DeviceDetail")
        self.api: DevicesApi | None = None
        #: who acts: the page shows what the role allows; the service decides
        self.actor: Actor = local_owner()
        self.capabilities: DeviceCapabilities | None = None
        self.device: Device | None = None
        self._shown_id: str | None = None  # the device shown (its details may still load)
        self._background = BackgroundCall(self)
        self.overview = OverviewTab()
        self.shadow_tab = ShadowTab()
        self.commands = CommandsTab()
        self.alerts = AlertsTab()
        self.commands.confirm = lambda title, text: self.confirm(title, text)
        #: replaced in tests; returns True when the person confirms
        self.confirm: Callable[[str, str], bool] = self._ask
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 8, 8)
        layout.addLayout(self._build_header())
        self.role_note = RoleNote(self.actor, ROLE_GATED)
        layout.addWidget(self.role_note)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setVisible(False)
        layout.addWidget(self.message)
        layout.addWidget(self._build_tabs(), 1)
        self.overview.saved.connect(self._saved)
        self._set_enabled(False)

    def _build_header(self) -> QHBoxLayout:
        self.title = QLabel("No device selected")
        self.title.setProperty("role", "title")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.subtitle = QLabel("")
        self.subtitle.setProperty("role", "secondary")
        self.status_pill = QLabel("")
        self._pill_shows: object = None  # the status the pill was last painted for
        self.status_pill.setObjectName("StatusPill")
        self.decommission_button = QPushButton("Decommission…")
        # The technician watching a device wants its readings moving: one click
        # (or Ctrl+L) to Analytics > Live with this device chosen.
        self.live_button = QPushButton("Live chart")
        self.live_button.setToolTip(f"Open this device's live chart on Analytics ({LIVE_KEYS})")
        self.live_button.setEnabled(False)
        QShortcut(QKeySequence(LIVE_KEYS), self, self.open_live)
        self.close_button = QPushButton("Close")
        self.close_button.setToolTip("Close the detail panel (Esc)")
        title_row = QHBoxLayout()
        title_row.addWidget(self.title)
        title_row.addWidget(self.status_pill)
        title_row.addStretch(1)
        names = QVBoxLayout()
        names.setSpacing(2)
        names.addLayout(title_row)
        names.addWidget(self.subtitle)
        header = QHBoxLayout()
        header.addLayout(names, 1)
        header.addWidget(self.live_button, 0, Qt.AlignmentFlag.AlignTop)
        header.addWidget(self.decommission_button, 0, Qt.AlignmentFlag.AlignTop)
        header.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.decommission_button.clicked.connect(self.decommission)
        self.live_button.clicked.connect(self.open_live)
        self.close_button.clicked.connect(self.close_requested)
        return header

    def _build_tabs(self) -> QTabWidget:
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.overview, "Overview")
        self.tabs.addTab(self.shadow_tab, "Shadow")
        self.tabs.addTab(self.commands, "Commands")
        self.tabs.addTab(self.alerts, "Alerts")
        return self.tabs

    # -- public API ----------------------------------------------------------------------
    def bind(self, api: DevicesApi | None, actor: Actor,
             capabilities: DeviceCapabilities | None) -> None:
        """The person's devices use cases, and what this backend can do."""
        self.api, self.actor, self.capabilities = api, actor, capabilities
        for tab in (self.overview, self.shadow_tab, self.commands):
            tab.bind(api, actor, capabilities)
        self._update_availability()

    @property
    def device_id(self) -> str | None:
        return None if self.device is None else self.device.device_id

    @property
    def loaded_device_id(self) -> str | None:
        """The id whose details (values, alerts, history) finished loading."""
        return self.overview.loaded_device_id

    def show_device(self, device_id: str, device: Device | None = None) -> None:
        """Show ``device`` at once if given (from the list), then load the rest."""
        self._clear()
        self._shown_id = device_id
        self.shadow_tab.device_id = self.commands.device_id = device_id
        if device is not None:
            self._show_identity(device)
        else:
            self.title.setText(device_id)
        self._set_enabled(True)
        api = self.api
        if api is None:
            self._show_message("Backend not ready yet", "secondary")
            return
        self._background.start(lambda: api.details(device_id), self._details_loaded,
                               lambda exc: self._show_message(
                                   f"Could not load the device: {exc}", "error"), key=DETAILS)
        self.shadow_tab.reload()

    def apply_events(self, events: Iterable[FleetEvent]) -> None:
        """Live updates for the shown device (a LiveBridge batch)."""
        device_id = self.device_id
        if device_id is None:
            return
        for event in events:
            match event:
                case TelemetryReceived(device_id=shown) if shown == device_id:
                    self.overview.add_readings(event.readings)
                case DeviceChanged(device=device) if device.device_id == device_id:
                    self._show_identity(device, keep_edits=True)
                case ShadowChanged(document=document) if document.device_id == device_id:
                    self.shadow_tab.show_shadow(document, keep_editor=True)
                case CommandChanged(record=record) if record.device_id == device_id:
                    self.commands.show_record(record)
                case AlertChanged(alert=alert) if alert.device_id == device_id:
                    self.alerts.upsert(alert)
                    self._paint_status()

    def decommission(self) -> None:
        device, api = self.device, self.api
        if device is None or api is None:
            return
        if not self.confirm(
            "Decommission device",
            f"Decommission {device.display_name} ({device.device_id})?\n\n"
            "It stays in the registry as decommissioned and its status is no longer "
            "updated; register it again to bring it back."):
            return
        self.decommission_button.setEnabled(False)

        def done(updated: Device) -> None:
            if updated.device_id == self.device_id:
                self._show_identity(updated)
            self._show_message(f"{updated.device_id} decommissioned", "success")
            safe_emit(self.device_changed, updated)

        def failed(exc: BaseException) -> None:
            self._show_message(f"Could not decommission: {exc}", "error")
            self._update_availability()

        self._background.start(lambda: api.decommission(device.device_id), done, failed)

    # -- showing -------------------------------------------------------------------------
    def _show_identity(self, device: Device, *, keep_edits: bool = False) -> None:
        self.device = device
        self.commands.display_name = device.display_name
        self.title.setText(device.display_name)
        self.subtitle.setText(f"{device.device_id}  ·  {device.device_type}  ·  "
                              f"{device.organization}")
        self.overview.show_identity(device, keep_edits=keep_edits)
        self._paint_status()
        self._update_availability()

    def _details_loaded(self, details: DeviceDetails) -> None:
        if details.device.device_id != self.device_id:
            return
        self._show_identity(details.device)
        self.overview.show_details(details)
        self.alerts.show_alerts(details.alerts)
        self._paint_status()
        for record in reversed(details.commands):
            self.commands.show_record(record)
        if details.errors:
            self._show_message("; ".join(f"{k}: {v}" for k, v in details.errors.items()),
                               "error")

    def _saved(self, device: Device) -> None:
        self._show_identity(device)
        safe_emit(self.device_changed, device)

    def _paint_status(self) -> None:
        """The pill shows the device's health (core.services.fleet_health), as
        the list does; ``self.device`` keeps the registry's link status."""
        if self.device is None:
            return
        status = health_of(self.device, self.alerts.alerts_by_id.values()).status
        if status == self._pill_shows:
            # the device's every update comes here: a style sheet set again
            # re-polishes the pill and lays out the title row (20 ms of a
            # window stall beside a 10,000-device fleet, bench/console_bench.py)
            return
        self._pill_shows = status
        colour = STATUS_COLOURS.get(status.value, "#6b7280")
        self.status_pill.setText(status_label(status).upper())
        self.status_pill.setStyleSheet(
            f"QLabel#StatusPill {{ color: white; background: {colour}; border-radius: 8px;"
            " padding: 1px 8px; font-weight: 600; font-size: 11px; }")

    def _clear(self) -> None:
        self._background.cancel(DETAILS)
        self.device = None
        self.message.setVisible(False)
        for tab in (self.overview, self.shadow_tab, self.commands, self.alerts):
            tab.clear()

    def _set_enabled(self, on: bool) -> None:
        self.tabs.setEnabled(on)
        if not on:
            self.decommission_button.setEnabled(False)
        self._update_availability()

    def open_live(self) -> None:
        device_id = self._shown_id
        if device_id is not None and self.live_button.isEnabled():
            safe_emit(self.live_requested, device_id)

    def _update_availability(self) -> None:
        for tab in (self.overview, self.shadow_tab, self.commands):
            tab.update_availability()
        device = self.device
        self.live_button.setEnabled(self._shown_id is not None and self.tabs.isEnabled())
        retired = device is not None and device.status is DeviceStatus.DECOMMISSIONED
        may = self.actor.can(Permission.DEVICE_DECOMMISSION)
        self.decommission_button.setEnabled(device is not None and not retired
                                            and self.api is not None and may)
        self.decommission_button.setToolTip(
            "Already decommissioned" if retired else
            ("" if may else self.actor.denial(Permission.DEVICE_DECOMMISSION)) or
            "Retire this device: it stays in the registry as decommissioned")
        self.role_note.set_actor(self.actor, ROLE_GATED)

    def _show_message(self, text: str, role: str) -> None:
        show_status(self.message, text, role)

    def _ask(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(
            self, title, text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes
