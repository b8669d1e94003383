"""File > Settings: choose the active profile and edit or add profiles.

The form is generated from ``core.config.PROFILE_KEYS`` so a key added to
Profile shows up here without a console change. Validation is core's own:
the candidate file is written to a scratch directory and read back with
``load_config``, so the dialog can never accept what the CLI would reject,
and the message the user sees is the same one the CLI would print.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from console.preferences import config_on_disk
from core.config import (
    PROFILE_KEYS,
    PROFILE_NAME,
    Config,
    Profile,
    check_backend,
    config_to_toml,
    load_config,
    save_config,
)
from core.context import AppContext
from core.errors import ConfigError

LABELS = {
    "backend": "Backend", "broker": "MQTT broker", "database": "Database URL",
    "organization": "Organization", "demo_fleet": "Simulated demo fleet",
    "aws_profile": "AWS profile", "region": "Region", "stage": "Stage",
    "endpoint_url": "Endpoint URL", "iot_endpoint": "IoT Core endpoint",
}
HINTS = {
    "broker": "embedded, or mqtt://host:1883 / mqtts://host:8883",
    "database": "empty = the built-in SQLite file; no password in the URL",
    "organization": "organization id used in MQTT topics",
    "aws_profile": "a profile in ~/.aws/config",
    "region": "e.g. eu-west-1",
    "stage": "table suffix, e.g. dev → iot-devices-dev",
    "endpoint_url": "empty for AWS; http://127.0.0.1:5000 for a moto server",
    "iot_endpoint": "xxxxxxxx-ats.iot.REGION.amazonaws.com",
}
# Whole-number keys get a spin box bounded as the loader checks them.
INT_RANGES = {"aws_max_attempts": (1, 20)}
CONNECTION_KEYS = ("backend", "broker", "database", "organization", "demo_fleet")
AWS_KEYS = ("aws_profile", "region", "stage", "endpoint_url", "iot_endpoint")
RESTART_NOTE = "Restart the console to apply profile and backend changes."
NOT_LOADED = "No loaded plugin provides this backend (see Help, Plugins…)"
_KEY_IN_MESSAGE = re.compile(r"'profiles\.([a-z0-9-]+)\.([a-z_]+)'")


def validate(config: Config) -> Config:
    """Round-trips through core's loader; raises ConfigError with the file
    name stripped (it would be a meaningless scratch path)."""
    with tempfile.TemporaryDirectory(prefix="smartiot-settings-") as tmp:
        scratch = Path(tmp) / "config.toml"
        scratch.write_text(config_to_toml(config), encoding="utf-8")
        try:
            return load_config(scratch, config.data_dir, env={})
        except ConfigError as exc:
            raise ConfigError(str(exc).replace(f"{scratch}: ", "")) from None


class SettingsDialog(QDialog):
    saved = Signal(object)  # the Config written to disk

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.resize(760, 560)
        self.context = context
        self.fields: dict[str, QWidget] = {}
        load_error = ""
        try:
            self.base = config_on_disk(context)
        except ConfigError as exc:
            load_error = f"The config file has an error, showing the running settings: {exc}"
            self.base = context.config
        self.profiles: dict[str, Profile] = dict(self.base.profiles)
        self._editing: str | None = None

        self.active_combo = QComboBox()
        self.active_combo.addItems(sorted(self.profiles))
        self.active_combo.setCurrentText(self.base.profile_name)
        active_row = QHBoxLayout()
        active_row.addWidget(QLabel("Active profile:"))
        active_row.addWidget(self.active_combo, 1)

        self.profile_list = QListWidget()
        self.profile_list.addItems(sorted(self.profiles))
        self.profile_list.setFixedWidth(190)
        self.new_name_edit = QLineEdit()
        self.new_name_edit.setPlaceholderText("new profile name")
        self.add_button = QPushButton("Add")
        self.add_button.clicked.connect(self._on_add)
        self.new_name_edit.returnPressed.connect(self._on_add)
        add_row = QHBoxLayout()
        add_row.addWidget(self.new_name_edit, 1)
        add_row.addWidget(self.add_button)
        left = QVBoxLayout()
        left.addWidget(self.profile_list, 1)
        left.addLayout(add_row)

        right = QVBoxLayout()
        right.addWidget(self._group("Connection", CONNECTION_KEYS))
        self.aws_group = self._group("AWS", AWS_KEYS)
        right.addWidget(self.aws_group)
        other = tuple(k for k in PROFILE_KEYS if k not in CONNECTION_KEYS + AWS_KEYS)
        if other:
            right.addWidget(self._group("Other", other))
        right.addStretch(1)
        backend = self.fields["backend"]
        assert isinstance(backend, QComboBox)
        backend.currentTextChanged.connect(lambda b: self.aws_group.setEnabled(b == "aws"))

        body = QHBoxLayout()
        body.addLayout(left)
        body.addSpacing(8)
        body.addLayout(right, 1)

        self.error_label = QLabel()
        self.error_label.setProperty("role", "error")
        self.error_label.setWordWrap(True)
        self.status_label = QLabel()
        self.status_label.setProperty("role", "success")
        self.status_label.setWordWrap(True)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                   | QDialogButtonBox.StandardButton.Close)
        self.save_button = buttons.button(QDialogButtonBox.StandardButton.Save)
        self.save_button.clicked.connect(self.save)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(active_row)
        layout.addLayout(body, 1)
        layout.addWidget(self.error_label)
        layout.addWidget(self.status_label)
        layout.addWidget(buttons)

        self.profile_list.currentTextChanged.connect(self._on_profile_selected)
        self._select(self.base.profile_name)
        self._show_error(load_error)
        self._show_status("")

    # ------------------------------------------------------------ form
    def _group(self, title: str, keys: tuple[str, ...]) -> QGroupBox:
        box = QGroupBox(title)
        form = QFormLayout(box)
        for key in keys:
            widget: QWidget
            if PROFILE_KEYS[key] is bool:
                widget = QCheckBox()
            elif PROFILE_KEYS[key] is int:
                # a number field, so what is saved is a number (the loader refuses text)
                spin = QSpinBox()
                spin.setRange(*INT_RANGES.get(key, (0, 1_000_000)))
                widget = spin
            elif key == "backend":
                # the backends the loaded plugins provide, not a fixed list
                combo = QComboBox()
                for name, spec in sorted(self.context.plugins.backends().items()):
                    combo.addItem(name)
                    combo.setItemData(combo.count() - 1, spec.description,
                                      Qt.ItemDataRole.ToolTipRole)
                widget = combo
            else:
                edit = QLineEdit()
                edit.setPlaceholderText(HINTS.get(key, ""))
                edit.textEdited.connect(lambda _t, e=edit: self._mark_invalid(e, False))
                widget = edit
            widget.setObjectName(f"field_{key}")
            self.fields[key] = widget
            form.addRow(LABELS.get(key, key.replace("_", " ").capitalize()), widget)
        return box

    def field(self, key: str) -> QWidget:
        return self.fields[key]

    def _load_form(self, profile: Profile) -> None:
        for key, widget in self.fields.items():
            value = getattr(profile, key)
            if isinstance(widget, QCheckBox):
                widget.setChecked(bool(value))
            elif isinstance(widget, QSpinBox):
                widget.setValue(int(value))
            elif isinstance(widget, QComboBox):
                if widget.findText(str(value)) < 0:  # e.g. its plugin is blocked
                    widget.addItem(str(value))
                    widget.setItemData(widget.count() - 1, NOT_LOADED,
                                       Qt.ItemDataRole.ToolTipRole)
                widget.setCurrentText(str(value))
            elif isinstance(widget, QLineEdit):
                widget.setText(str(value))
                self._mark_invalid(widget, False)
        self.aws_group.setEnabled(profile.backend == "aws")

    def _read_form(self, name: str) -> Profile:
        values: dict[str, Any] = {}  # str, bool or int per PROFILE_KEYS; the loader re-checks
        for key, widget in self.fields.items():
            if isinstance(widget, QCheckBox):
                values[key] = widget.isChecked()
            elif isinstance(widget, QSpinBox):
                values[key] = widget.value()
            elif isinstance(widget, QComboBox):
                values[key] = widget.currentText()
            elif isinstance(widget, QLineEdit):
                values[key] = widget.text().strip()
        return dataclasses.replace(self.profiles[name], **values)

    def _commit_form(self) -> None:
        if self._editing is not None and self._editing in self.profiles:
            self.profiles[self._editing] = self._read_form(self._editing)

    def _select(self, name: str) -> None:
        items = self.profile_list.findItems(name, Qt.MatchFlag.MatchExactly)
        if items:
            self.profile_list.setCurrentItem(items[0])

    def _on_profile_selected(self, name: str) -> None:
        if not name:
            return
        self._commit_form()
        self._editing = name
        self._load_form(self.profiles[name])

    # ------------------------------------------------------------ actions
    def add_profile(self, name: str) -> bool:
        name = name.strip()
        if PROFILE_NAME.fullmatch(name) is None:
            self._show_error(f"Profile name {name!r} must be lower-case letters, digits and "
                             "'-', starting with a letter (at most 32 characters).")
            return False
        if name in self.profiles:
            self._show_error(f"A profile named {name!r} already exists.")
            return False
        self._commit_form()
        self.profiles[name] = Profile(name, backend="aws" if name.startswith("aws-") else "local")
        self.profile_list.addItem(name)
        self.profile_list.sortItems()
        self.active_combo.addItem(name)
        self._select(name)
        self._show_error("")
        self.new_name_edit.clear()
        return True

    def _on_add(self) -> None:
        self.add_profile(self.new_name_edit.text())

    def save(self) -> bool:
        self._commit_form()
        candidate = dataclasses.replace(self.base, profile_name=self.active_combo.currentText(),
                                        profiles=dict(self.profiles))
        try:
            validate(candidate)
            save_config(candidate)
        except ConfigError as exc:
            self._show_status("")
            self._show_error(str(exc))
            self._point_at(str(exc))
            return False
        except OSError as exc:
            self._show_status("")
            self._show_error(f"Could not write {candidate.path}: {exc.strerror or exc}")
            return False
        self.base = candidate
        self._show_error("")
        note = self._backend_note(candidate)
        self._show_status(f"Saved to {candidate.path}. {RESTART_NOTE}{note}")
        self.saved.emit(candidate)
        return True

    def _backend_note(self, saved: Config) -> str:
        """The next start runs the active profile: say so now if no loaded plugin
        provides its backend (saving is still allowed: the plugin may be installed
        or unblocked before then)."""
        try:
            check_backend(saved, self.context.plugins.backends())
        except ConfigError as exc:
            return f" Note: {exc}."
        return ""

    # ------------------------------------------------------------ feedback
    def _point_at(self, message: str) -> None:
        """Jump to the profile and field the message names, so the user does
        not have to hunt for 'profiles.lab.broker' by hand."""
        match = _KEY_IN_MESSAGE.search(message)
        if match is None or match.group(1) not in self.profiles:
            return
        self._select(match.group(1))
        widget = self.fields.get(match.group(2))
        if isinstance(widget, QLineEdit):
            self._mark_invalid(widget, True)
            widget.setFocus()

    def _mark_invalid(self, edit: QLineEdit, invalid: bool) -> None:
        if bool(edit.property("invalid")) == invalid:
            return
        edit.setProperty("invalid", invalid)
        edit.style().unpolish(edit)
        edit.style().polish(edit)

    def _show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))

    def _show_status(self, text: str) -> None:
        self.status_label.setText(text)
        self.status_label.setVisible(bool(text))
