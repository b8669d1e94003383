"""The detail panel's Commands tab: ping, identify, reboot and the reporting
interval, and the device's command history with each answer and its latency.

A command goes through ``context.api.devices.command`` (role check and audit
entry there); the row shows "sending…" at once and the answer when it comes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from console.theme import current_colors
from console.widgets.background import BackgroundCall
from core.identity import local_owner
from core.model import CommandRecord
from core.model.roles import Actor, Permission
from core.model.timeutil import utcnow
from core.ports.commands import CommandOutcome, CommandResult
from core.ports.fleet_api.devices import DeviceCapabilities, DevicesApi
from plugins.devices.widgets.panel_text import NOT_AVAILABLE, local_time, show_status


class CommandsTab(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.api: DevicesApi | None = None
        self.actor: Actor = local_owner()
        self.capabilities: DeviceCapabilities | None = None
        self.device_id: str | None = None
        self.display_name = ""  # the shown device's name, for the reboot question
        #: replaced in tests; returns True when the person confirms
        self.confirm: Callable[[str, str], bool] = lambda _title, _text: False
        self._background = BackgroundCall(self)
        self._history: dict[str, QTreeWidgetItem] = {}
        # The round trip this console measured per request: the banner and
        # the table show this one number, not a second one from stored times.
        self._latency: dict[str, float] = {}
        self._build()

    def _build(self) -> None:
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
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 8, 4, 0)
        layout.addLayout(row)
        layout.addWidget(self.command_status)
        layout.addWidget(self.command_list, 1)

        self.ping_button.clicked.connect(lambda: self.send_command("ping"))
        self.identify_button.clicked.connect(lambda: self.send_command("identify"))
        self.reboot_button.clicked.connect(self.reboot)
        self.interval_button.clicked.connect(
            lambda: self.send_command("set-interval", {"seconds": self.interval_spin.value()}))

    # -- state ---------------------------------------------------------------------------
    def bind(self, api: DevicesApi | None, actor: Actor,
             capabilities: DeviceCapabilities | None) -> None:
        self.api, self.actor, self.capabilities = api, actor, capabilities
        self.update_availability()

    def clear(self) -> None:
        self.device_id = None
        self.command_list.clear()
        self._history.clear()
        self._latency.clear()
        self.command_status.setText("")

    def update_availability(self) -> None:
        caps = self.capabilities
        commands_ok = caps is not None and caps.commands
        may_command = self.actor.can(Permission.DEVICE_COMMAND)
        for button in (self.ping_button, self.identify_button, self.reboot_button,
                       self.interval_button, self.interval_spin):
            button.setEnabled(commands_ok and self.device_id is not None and may_command)
            if caps is not None and not caps.commands:
                button.setToolTip(f"{NOT_AVAILABLE.format(backend=caps.backend)}: "
                                  "it has no command channel")
            elif not may_command:
                button.setToolTip(self.actor.denial(Permission.DEVICE_COMMAND))
        if caps is not None and not caps.commands:
            self.command_status.setText(f"{NOT_AVAILABLE.format(backend=caps.backend)}: "
                                        "it has no command channel")

    # -- sending -------------------------------------------------------------------------
    def reboot(self) -> None:
        device_id = self.device_id
        if device_id is None:
            return
        name = self.display_name or device_id
        if self.confirm("Reboot device", f"Reboot {name} ({device_id})?\n\n"
                                         "It stops reporting until it is back up."):
            self.send_command("reboot")

    def send_command(self, command: str, params: dict[str, Any] | None = None,
                     *, timeout_s: float = 10.0) -> None:
        api, device_id = self.api, self.device_id
        if api is None or device_id is None or not (self.capabilities
                                                    and self.capabilities.commands):
            return
        local_id = f"local-{command}-{utcnow().timestamp()}"
        item = QTreeWidgetItem([local_time(utcnow()).split(" ")[1], command, "sending…", "",
                                json.dumps(params) if params else ""])
        self.command_list.insertTopLevelItem(0, item)
        self._history[local_id] = item
        show_status(self.command_status, f"{command} sent to {device_id}…", "secondary")

        def done(result: CommandResult) -> None:
            self._history.pop(local_id, None)
            existing = self._history.get(result.request_id)
            if existing is not None and existing is not item:
                self.command_list.takeTopLevelItem(self.command_list.indexOfTopLevelItem(item))
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
            show_status(self.command_status, f"{command}: {result.outcome.value}{latency}",
                        role)

        def failed(exc: BaseException) -> None:
            self._fill_result(item, "error", None, str(exc) or type(exc).__name__)
            show_status(self.command_status, f"{command} failed: {exc or type(exc).__name__}",
                        "error")

        self._background.start(
            lambda: api.command(device_id, command, params, timeout_s=timeout_s), done, failed)

    # -- history -------------------------------------------------------------------------
    def show_record(self, record: CommandRecord) -> None:
        item = self._history.get(record.request_id)
        if item is None:
            item = QTreeWidgetItem([local_time(record.created_at).split(" ")[1],
                                    record.command, "", "",
                                    json.dumps(record.params) if record.params else ""])
            item.setToolTip(0, local_time(record.created_at))
            self.command_list.insertTopLevelItem(0, item)
            self._history[record.request_id] = item
        latency = self._latency.get(record.request_id)
        if latency is None and record.completed_at is not None:
            # Sent from elsewhere (the CLI, another console): the stored times.
            latency = (record.completed_at - record.created_at).total_seconds() * 1000
        details = record.error or (json.dumps(record.response) if record.response else "")
        self._fill_result(item, record.status.value, latency, details)

    def command_rows(self) -> list[tuple[str, str, str]]:
        items = (self.command_list.topLevelItem(i)
                 for i in range(self.command_list.topLevelItemCount()))
        return [(item.text(1), item.text(2), item.text(3)) for item in items if item is not None]

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
