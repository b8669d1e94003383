"""The Users page's small dialogs: a new person, a new role, a new password.

They only collect input. Each is opened with ``open()`` (window-modal, not a
nested event loop), so the page keeps painting and a test fills the fields
and presses OK like a person does. What the backend accepts (name rules,
password policy, roles an admin may not change) is the service's to say:
the page shows its answer.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.model.roles import Role

ROLE_HELP = {
    Role.TECHNICIAN: "field work: register and update devices, send commands, handle alerts",
    Role.SUPPORT: "the alert queue only",
    Role.ENGINEER: "everything that changes how devices behave (rules, firmware, deployments)",
    Role.ADMIN: "everything, including deleting records, signing keys and this directory",
}
# Least privilege first: a new person is a technician unless the admin says otherwise.
DEFAULT_ROLE = Role.TECHNICIAN
DIALOG_WIDTH = 460


def role_combo(current: Role = DEFAULT_ROLE) -> QComboBox:
    combo = QComboBox()
    for role in Role:
        combo.addItem(role.value, role)
        combo.setItemData(combo.count() - 1, ROLE_HELP[role], Qt.ItemDataRole.ToolTipRole)
    combo.setCurrentIndex(list(Role).index(current))
    return combo


def _password_field(placeholder: str) -> QLineEdit:
    field = QLineEdit()
    field.setEchoMode(QLineEdit.EchoMode.Password)
    field.setPlaceholderText(placeholder)
    return field


def _note(text: str, role: str = "secondary") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setProperty("role", role)
    return label


class _Dialog(QDialog):
    """OK is greyed until the input can be sent; a mismatch says so in red."""

    def __init__(self, title: str, ok_text: str, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(DIALOG_WIDTH)
        self.form = QFormLayout()
        self.problem = _note("", "error")
        self.problem.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button: QPushButton = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText(ok_text)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.layout_ = QVBoxLayout(self)
        self.layout_.addLayout(self.form)

    def finish_layout(self) -> None:
        self.layout_.addWidget(self.problem)
        self.layout_.addWidget(self.buttons)

    def say(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.setVisible(bool(text))
        QTimer.singleShot(0, self, self._fit)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._fit()

    def _fit(self) -> None:
        """Tall enough for the wrapped notes: Qt sizes a window by its layout's
        minimum, which leaves wrapped text out, so the notes were cut."""
        needed = self.layout_.totalHeightForWidth(self.width())
        if self.height() < needed:
            self.resize(self.width(), needed)


class _PasswordPair:
    def __init__(self, dialog: _Dialog, first: str, again: str, *, required: bool) -> None:
        self.required = required
        self.password = _password_field(first)
        self.again = _password_field(again)
        dialog.form.addRow("Password", self.password)
        dialog.form.addRow("Again", self.again)

    def problem(self) -> str:
        first, again = self.password.text(), self.again.text()
        if self.required and not first:
            return "Type the new password."
        if first != again:
            return "The two passwords differ."
        return ""

    def value(self) -> str | None:
        return self.password.text() or None


class PersonDialog(_Dialog):
    """Name, role, organization and an optional initial password.

    An admin who belongs to an organization adds people into it (the service
    does so whatever is typed), so the field is fixed to it here."""

    def __init__(self, organization: str = "", parent: QWidget | None = None) -> None:
        super().__init__("Add a person", "Add", parent)
        self.name = QLineEdit()
        self.name.setPlaceholderText("the name they sign in with (e-mail on AWS)")
        self.role = role_combo()
        self.role_help = _note(ROLE_HELP[DEFAULT_ROLE])
        self.organization = QLineEdit(organization)
        if organization:
            self.organization.setReadOnly(True)
            self.organization.setToolTip("You add people into your own organization")
        else:
            self.organization.setPlaceholderText("none: sees every organization")
        self.form.addRow("Name", self.name)
        self.form.addRow("Role", self.role)
        self.form.addRow("", self.role_help)
        self.form.addRow("Organization", self.organization)
        self.passwords = _PasswordPair(self, "initial password (optional)", "repeat it",
                                       required=False)
        self.form.addRow("", _note(
            "With a password they can sign in at once (on AWS it is temporary: they choose "
            "their own at the first sign-in). Without one, a name that is an e-mail address "
            "gets the identity provider's invitation where it sends one; anyone else needs "
            "\"Reset password…\" before they can sign in."))
        self.finish_layout()
        self.role.currentIndexChanged.connect(
            lambda _i: self.role_help.setText(ROLE_HELP[self.chosen_role()]))
        for field in (self.name, self.passwords.password, self.passwords.again):
            field.textChanged.connect(self._check)
        self._check()

    def chosen_role(self) -> Role:
        return list(Role)[self.role.currentIndex()]

    def _check(self) -> None:
        problem = self.passwords.problem() if self.passwords.again.text() else ""
        self.say(problem)
        self.ok_button.setEnabled(bool(self.name.text().strip()) and not problem)

    def accept(self) -> None:
        problem = self.passwords.problem()
        if problem:
            self.say(problem)
            return
        super().accept()

    def values(self) -> tuple[str, Role, str, str | None]:
        return (self.name.text().strip(), self.chosen_role(),
                self.organization.text().strip(), self.passwords.value())


class RoleDialog(_Dialog):
    def __init__(self, name: str, current: Role, parent: QWidget | None = None) -> None:
        super().__init__(f"Change the role of {name}", "Change role", parent)
        self.role = role_combo(current)
        self.role_help = _note(ROLE_HELP[current])
        self.form.addRow("Role", self.role)
        self.form.addRow("", self.role_help)
        self.form.addRow("", _note("The new role counts from their next request; a "
                                   "console they have open shows it after signing in again."))
        self.finish_layout()
        self.current = current
        self.role.currentIndexChanged.connect(self._changed)
        self._changed()

    def chosen_role(self) -> Role:
        return list(Role)[self.role.currentIndex()]

    def _changed(self, _index: int = 0) -> None:
        self.role_help.setText(ROLE_HELP[self.chosen_role()])
        self.ok_button.setEnabled(self.chosen_role() is not self.current)


class PasswordDialog(_Dialog):
    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(f"Reset the password of {name}", "Set password", parent)
        self.passwords = _PasswordPair(self, "new password", "repeat it", required=True)
        self.form.addRow("", _note(
            "Every sign-in of theirs ends. Tell them the password another way than "
            "e-mail; on AWS it is temporary and they choose their own at the next sign-in."))
        self.finish_layout()
        for field in (self.passwords.password, self.passwords.again):
            field.textChanged.connect(self._check)
        self._check()

    def _check(self) -> None:
        problem = self.passwords.problem() if self.passwords.again.text() else ""
        self.say(problem)
        self.ok_button.setEnabled(bool(self.passwords.password.text()) and not problem)

    def accept(self) -> None:
        problem = self.passwords.problem()
        if problem:
            self.say(problem)
            return
        super().accept()

    def value(self) -> str:
        return self.passwords.password.text()
