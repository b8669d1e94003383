"""The detail panel's Shadow tab: desired and reported state side by side
(keys the device has not applied yet stand out), and an editor for the
desired state.

The edit is sent with the shadow version it started from, so a change made
meanwhile by someone else (or by the device) is a version conflict to
resolve, not a silent overwrite.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from console.theme import current_colors
from console.widgets.background import BackgroundCall
from core.errors import ConcurrentModification, ValidationError
from core.identity import local_owner
from core.model.roles import Actor, Permission
from core.ports.fleet_api.devices import DeviceCapabilities, DevicesApi
from core.ports.shadows import ShadowDocument
from plugins.devices.desired_state import parse_desired
from plugins.devices.widgets.panel_text import NOT_AVAILABLE, flatten, local_time, show_status

LOAD = "shadow"  # BackgroundCall key: a newer load supersedes an older one


class ShadowTab(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.api: DevicesApi | None = None
        self.actor: Actor = local_owner()
        self.capabilities: DeviceCapabilities | None = None
        self.device_id: str | None = None
        self.shadow: ShadowDocument | None = None
        self._background = BackgroundCall(self)
        self._build()

    def _build(self) -> None:
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
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 8, 4, 0)
        layout.addLayout(top)
        layout.addWidget(split, 1)

        self.shadow_reload.clicked.connect(self.reload)
        self.shadow_apply.clicked.connect(self.apply_desired)
        self.shadow_editor.textChanged.connect(self._validate)

    # -- state ---------------------------------------------------------------------------
    def bind(self, api: DevicesApi | None, actor: Actor,
             capabilities: DeviceCapabilities | None) -> None:
        self.api, self.actor, self.capabilities = api, actor, capabilities
        self.update_availability()

    def _available(self) -> bool:
        return self.api is not None and self.capabilities is not None \
            and self.capabilities.shadows

    def clear(self) -> None:
        self._background.cancel(LOAD)
        self.device_id = None
        self.shadow = None
        self.shadow_tree.clear()
        self.shadow_editor.blockSignals(True)
        self.shadow_editor.setPlainText("")
        self.shadow_editor.blockSignals(False)
        self.shadow_error.setVisible(False)
        self.shadow_version.setText("")

    def update_availability(self) -> None:
        caps = self.capabilities
        shadows_ok = caps is not None and caps.shadows
        may_desire = self.actor.can(Permission.DESIRED_STATE)
        self.shadow_editor.setReadOnly(not (shadows_ok and may_desire))
        self.shadow_reload.setEnabled(shadows_ok)
        self.shadow_apply.setEnabled(shadows_ok and self.device_id is not None and may_desire)
        if not may_desire:
            self.shadow_apply.setToolTip(self.actor.denial(Permission.DESIRED_STATE))
        if caps is not None and not caps.shadows:
            tip = f"{NOT_AVAILABLE.format(backend=caps.backend)}: it has no shadow service"
            for widget in (self.shadow_apply, self.shadow_reload, self.shadow_editor):
                widget.setToolTip(tip)
            self.shadow_version.setText(tip)

    # -- loading -------------------------------------------------------------------------
    def reload(self) -> None:
        api, device_id = self.api, self.device_id
        if api is None or device_id is None or not self._available():
            return
        self.shadow_version.setText("Loading shadow…")
        self._background.start(lambda: api.shadow(device_id), self.show_shadow, self._failed,
                               key=LOAD)

    def _failed(self, exc: BaseException) -> None:
        self.shadow_version.setText("Shadow could not be loaded")
        show_status(self.shadow_error, str(exc), "error")

    def show_shadow(self, document: ShadowDocument, *, keep_editor: bool = False) -> None:
        editor_dirty = keep_editor and self.shadow is not None and (
            self.shadow_editor.toPlainText().strip()
            != json.dumps(self.shadow.desired, indent=2, sort_keys=True).strip())
        self.shadow = document
        updated = f" · updated {local_time(document.updated_at)}" if document.updated_at else ""
        delta = document.delta
        pending = f" · {len(flatten(delta))} pending change(s)" if delta else " · in sync"
        self.shadow_version.setText(f"Version {document.version}{updated}{pending}")
        self._fill_tree(document)
        if not editor_dirty:
            self.shadow_editor.setPlainText(json.dumps(document.desired, indent=2,
                                                       sort_keys=True))
        self._validate()

    def _fill_tree(self, document: ShadowDocument) -> None:
        desired, reported = flatten(document.desired), flatten(document.reported)
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

    def shadow_rows(self) -> list[tuple[str, str, str, bool]]:
        """(key, desired, reported, differs) as shown; for tests and screenshots."""
        items = (self.shadow_tree.topLevelItem(i)
                 for i in range(self.shadow_tree.topLevelItemCount()))
        return [(item.text(0), item.text(1), item.text(2), item.font(0).bold())
                for item in items if item is not None]

    # -- editing -------------------------------------------------------------------------
    def _validate(self) -> dict[str, Any] | None:
        try:
            value = parse_desired(self.shadow_editor.toPlainText())
        except ValidationError as exc:
            show_status(self.shadow_error, str(exc), "error")
            self.shadow_apply.setEnabled(False)
            return None
        self.shadow_error.setVisible(False)
        self.shadow_apply.setEnabled(self._available()
                                     and self.actor.can(Permission.DESIRED_STATE))
        return value

    def apply_desired(self) -> None:
        api, device_id = self.api, self.device_id
        desired = self._validate()
        if desired is None or api is None or device_id is None or not self._available():
            return
        # keys removed in the editor are deleted (IoT Core: null deletes)
        if self.shadow is not None:
            for key in self.shadow.desired:
                desired.setdefault(key, None)
        expected = self.shadow.version if self.shadow is not None else None
        self.shadow_apply.setEnabled(False)
        show_status(self.shadow_error, "Sending…", "secondary")

        def done(document: ShadowDocument) -> None:
            if document.device_id != self.device_id:
                return
            self.show_shadow(document)
            show_status(self.shadow_error,
                        f"Desired state saved (version {document.version})", "success")

        def failed(exc: BaseException) -> None:
            self.shadow_apply.setEnabled(self.actor.can(Permission.DESIRED_STATE))
            if isinstance(exc, ConcurrentModification):
                text = (f"Version conflict: the shadow changed since version {expected} "
                        f"was loaded ({exc}). Press Reload, check the new state, and apply "
                        "your change again.")
            else:
                text = f"Not saved: {exc}"
            show_status(self.shadow_error, text, "error")

        self._background.start(
            lambda: api.update_desired(device_id, desired, expected_version=expected),
            done, failed)
