"""Register a new device: the id is checked as it is typed."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from core.errors import ValidationError
from core.model import Device, DeviceStatus, validate_device_id


class RegisterDeviceDialog(QDialog):
    def __init__(self, types: list[str], organizations: list[str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Register device")
        self.setMinimumWidth(420)
        self.id_edit = QLineEdit()
        self.id_edit.setPlaceholderText("e.g. pump-00042 (A-Z a-z 0-9 : _ -)")
        self.name_edit = QLineEdit()
        self.type_combo = QComboBox()
        self.type_combo.setEditable(True)
        self.type_combo.addItems(types or ["generic"])
        self.org_combo = QComboBox()
        self.org_combo.setEditable(True)
        self.org_combo.addItems(organizations or ["default"])
        self.tags_edit = QLineEdit()
        self.tags_edit.setPlaceholderText("comma separated")
        self.error = QLabel("")
        self.error.setProperty("role", "error")
        self.error.setWordWrap(True)
        self.error.setVisible(False)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Register")

        form = QFormLayout()
        form.addRow("Device id", self.id_edit)
        form.addRow("Name", self.name_edit)
        form.addRow("Type", self.type_combo)
        form.addRow("Organization", self.org_combo)
        form.addRow("Tags", self.tags_edit)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        for edit in (self.id_edit, self.name_edit, self.tags_edit):
            edit.textChanged.connect(self.validate)
        self.type_combo.editTextChanged.connect(self.validate)
        self.org_combo.editTextChanged.connect(self.validate)
        self.validate()

    def validate(self) -> Device | None:
        ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        text = self.id_edit.text()
        try:
            if not text:
                raise ValidationError("")
            validate_device_id(text)
            self.id_edit.setProperty("invalid", False)
            device = self.device()
        except ValidationError as exc:
            self.id_edit.setProperty("invalid", bool(text) and "device id" in str(exc))
            self.id_edit.style().polish(self.id_edit)
            self.error.setText(str(exc))
            self.error.setVisible(bool(str(exc)))
            ok_button.setEnabled(False)
            return None
        self.id_edit.style().polish(self.id_edit)
        self.error.setVisible(False)
        ok_button.setEnabled(True)
        return device

    def device(self) -> Device:
        tags = frozenset(t.strip() for t in self.tags_edit.text().split(",") if t.strip())
        return Device(self.id_edit.text(), name=self.name_edit.text().strip(),
                      device_type=self.type_combo.currentText().strip(),
                      organization=self.org_combo.currentText().strip(),
                      status=DeviceStatus.OFFLINE, tags=tags)

    def accept(self) -> None:
        if self.validate() is not None:
            super().accept()
