"""The Users page: the people who may work on the fleet, and an admin's
changes to them (add, change role, disable or enable, reset password).

Everything goes through ``context.api.users`` (core.services.users behind
the service port): in-process on the one-process console, the hub's REST API
on a team console, the Smart_IOT REST API over Cognito on AWS. The role
check, the organization's scope and the audit entry are the service's; the
page only greys out what the person's role may not do, and says why.

A change is shown as done only once the backend answered with the saved
account, so a row never claims a role the directory does not hold; a refusal
(an admin changing their own role, a password the policy refuses, someone
else's edit in between) is shown in red with the backend's words, and the
table keeps what the directory holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from console.widgets.background import BackgroundCall
from console.widgets.role_note import RoleNote, roles_for
from console.widgets.status_line import StatusLine, error_text
from console.widgets.tables import Column, ColumnTableModel, configure_row_table
from core.context import AppContext
from core.errors import ConcurrentModification, NotFound, PermissionDenied
from core.model.roles import Permission, Role
from core.model.users import UserAccount
from core.ports.fleet_api import UsersApi
from core.text import plural
from plugins.users.widgets.dialogs import PasswordDialog, PersonDialog, RoleDialog

DISABLED_GREY = "#9ca3af"
C_NAME, C_ROLE, C_ORG, C_STATE, C_CHANGED, C_CREATED = range(6)
ACTIONS = "Add person, Change role, Disable/Enable, Reset password"


def _when(u: UserAccount, at: str, by: str) -> str:
    ts = getattr(u, at)
    who = getattr(u, by)
    text = f"{ts.astimezone():%Y-%m-%d %H:%M}" if ts is not None else ""
    return f"{text} by {who}" if who and text else text or who


class UsersModel(ColumnTableModel[UserAccount]):
    """One row per person, keyed by name; disabled people in grey."""

    def __init__(self) -> None:
        def grey(u: UserAccount) -> str | None:
            return DISABLED_GREY if u.disabled else None

        super().__init__((
            Column("Name", lambda u: u.name, foreground=grey),
            Column("Role", lambda u: u.role.value, foreground=grey),
            Column("Organization", lambda u: u.organization or "—", foreground=grey,
                   tooltip=lambda u: "" if u.organization else "no organization: sees "
                   "every organization's devices"),
            Column("State", lambda u: "disabled" if u.disabled else "enabled",
                   foreground=grey),
            Column("Last change", lambda u: _when(u, "updated_at", "updated_by"),
                   foreground=grey),
            Column("Added", lambda u: _when(u, "created_at", "created_by"), foreground=grey),
        ), key=lambda u: u.name)


def _why(exc: BaseException, subject: str) -> str:
    """The backend's words, without the person's name said twice ("Could not
    change the role of ada: ada: an admin cannot...")."""
    text = error_text(exc).removeprefix(f"{subject}: ")
    if isinstance(exc, PermissionDenied):
        return f"not allowed: {text}"
    if isinstance(exc, ConcurrentModification):
        return f"{text} (the list is reloaded)"
    return text


class UsersPage(QWidget):
    """``loaded(count)``, ``changed(action, account)`` and ``refused(message)``
    let tests and other views wait for answers instead of timing them."""

    loaded = Signal(int)
    changed = Signal(str, object)
    refused = Signal(str)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("UsersPage")
        self.context = context
        self.actor = context.actor
        self.allowed = self.actor.can(Permission.USER_ADMIN)
        self.dialog: QDialog | None = None
        self._busy = False
        self._changes = 0  # changes saved from this page (a list read before one is stale)
        self._background = BackgroundCall(self)

        title = QLabel("Users")
        title.setProperty("role", "title")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search name, role, organization…  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(260)
        self.refresh_button = QPushButton("Refresh")
        top = QHBoxLayout()
        top.addWidget(title)
        top.addWidget(self.search, 1)
        top.addWidget(self.refresh_button)

        self.add_button = QPushButton("Add person…")
        self.add_button.setToolTip("A new person with a role and, if you like, an initial "
                                   "password")
        self.role_button = QPushButton("Change role…")
        self.disable_button = QPushButton("Disable")
        self.password_button = QPushButton("Reset password…")
        self.password_button.setToolTip("Set a new password for the selected person; their "
                                        "sign-ins end")
        actions = QHBoxLayout()
        for button in (self.add_button, self.role_button, self.disable_button,
                       self.password_button):
            actions.addWidget(button)
        actions.addStretch(1)
        self.role_note = RoleNote(self.actor, [(ACTIONS, Permission.USER_ADMIN)])

        self.result_label = QLabel("")
        self.result_label.setObjectName("UsersResult")
        self.result_label.setWordWrap(True)
        self.result_label.hide()
        self.status = StatusLine()

        self.model = UsersModel()
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterKeyColumn(-1)  # every column
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        configure_row_table(self.table)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(C_NAME, Qt.SortOrder.AscendingOrder)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for column, width in enumerate((220, 110, 160, 90, 230)):
            self.table.setColumnWidth(column, width)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(actions)
        layout.addWidget(self.role_note)
        layout.addWidget(self.result_label)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)

        self.search.textChanged.connect(self.proxy.setFilterFixedString)
        self.refresh_button.clicked.connect(self.reload)
        self.add_button.clicked.connect(self.open_add_dialog)
        self.role_button.clicked.connect(self.open_role_dialog)
        self.disable_button.clicked.connect(self.toggle_disabled)
        self.password_button.clicked.connect(self.open_password_dialog)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._sync_buttons())
        self.table.doubleClicked.connect(lambda _i: self.open_role_dialog())
        QShortcut(QKeySequence(QKeySequence.StandardKey.Find), self, self.focus_search)
        self.model.rowsInserted.connect(lambda *_: self._sync_buttons())

        self._sync_buttons()
        if self.allowed:
            self.reload()
        else:
            self.search.setEnabled(False)
            self.refresh_button.setEnabled(False)
            self.status.failed(f"{self.actor.user} ({self.actor.role.value}) may not "
                               f"{Permission.USER_ADMIN.action}; "
                               f"{roles_for(Permission.USER_ADMIN)}s may", doing="")

    # -- reading ---------------------------------------------------------------------------
    def service(self) -> UsersApi:
        """The person's users use cases (builds the backend on first use: call
        it on a worker thread)."""
        return self.context.api.users

    def reload(self) -> None:
        self.status.loading()
        asked_after = self._changes
        self._background.start(lambda: self.service().list(),
                               lambda accounts: self._loaded(accounts, asked_after),
                               self.status.failed, key="list")

    def _loaded(self, accounts: list[UserAccount], asked_after: int | None = None) -> None:
        """A list read while a change of this page was saved may not hold that
        change (a slow directory answers after the change's own answer): it is
        read again rather than shown over it. The person selected stays
        selected, so the next action acts on them."""
        if asked_after is not None and asked_after != self._changes:
            self.reload()
            return
        chosen = self.selected()
        self.model.set_rows(accounts)
        if chosen is not None and self.selected() != chosen:
            self.select(chosen.name)
        self.status.updated(self._summary())
        self._sync_buttons()
        self.loaded.emit(len(accounts))

    def _summary(self) -> str:
        accounts = self.model.rows
        if not accounts:  # the one-process console starts so: its owner acts as admin
            return "nobody is in the directory yet: Add person… adds the first"
        disabled = sum(1 for a in accounts if a.disabled)
        return plural(len(accounts), "person", "people") + (f", {disabled} disabled"
                                                            if disabled else "")

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def selected(self) -> UserAccount | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.model.row(self.proxy.mapToSource(rows[0]).row())

    def select(self, name: str) -> None:
        row = self.model.row_of(name)
        if row is None:
            return
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if index.isValid():
            self.table.selectRow(index.row())
            self.table.scrollTo(index)

    def _sync_buttons(self) -> None:
        person = self.selected()
        free = self.allowed and not self._busy
        self.add_button.setEnabled(free)
        for button in (self.role_button, self.disable_button, self.password_button):
            button.setEnabled(free and person is not None)
        self.disable_button.setText("Enable" if person is not None and person.disabled
                                    else "Disable")
        self.disable_button.setToolTip(
            "Let them act and sign in again" if person is not None and person.disabled
            else "Refuse their actions and sign-ins from now on; they are signed out")

    # -- changing --------------------------------------------------------------------------
    def open_add_dialog(self) -> None:
        dialog = PersonDialog(self.actor.organization, self)
        dialog.accepted.connect(lambda: self.add_person(*dialog.values()))
        self._open(dialog)

    def open_role_dialog(self) -> None:
        person = self.selected()
        if person is None or not self.allowed:
            return
        dialog = RoleDialog(person.name, person.role, self)
        dialog.accepted.connect(lambda: self.change_role(person.name, dialog.chosen_role()))
        self._open(dialog)

    def open_password_dialog(self) -> None:
        person = self.selected()
        if person is None:
            return
        dialog = PasswordDialog(person.name, self)
        dialog.accepted.connect(lambda: self.reset_password(person.name, dialog.value()))
        self._open(dialog)

    def toggle_disabled(self) -> None:
        person = self.selected()
        if person is not None:
            self.set_disabled(person.name, not person.disabled)

    def _open(self, dialog: QDialog) -> None:
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.dialog = dialog
        dialog.destroyed.connect(lambda *_: self._forget_dialog(dialog))
        dialog.open()

    def _forget_dialog(self, dialog: QDialog) -> None:
        if self.dialog is dialog:
            self.dialog = None

    def add_person(self, name: str, role: Role, organization: str = "",
                   password: str | None = None) -> None:
        def said(u: UserAccount) -> str:
            where = f" in {u.organization}" if u.organization else ""
            how = "they can sign in with the password you set" if password else \
                "they need a password (Reset password…) or the invitation before signing in"
            return f"Added {u.name} as {u.role.value}{where}; {how}."

        self._change("add", name, f"add {name}",
                     lambda: self.service().add(name, role, organization, password), said)

    def change_role(self, name: str, role: Role) -> None:
        self._change("role", name, f"change the role of {name}",
                     lambda: self.service().set_role(name, role),
                     lambda u: f"{u.name} is now {u.role.value}.")

    def set_disabled(self, name: str, disabled: bool) -> None:
        verb = "disable" if disabled else "enable"
        self._change(verb, name, f"{verb} {name}",
                     lambda: self.service().set_disabled(name, disabled),
                     lambda u: f"{u.name} is disabled: their actions and sign-ins are refused."
                     if u.disabled else f"{u.name} is enabled again.")

    def reset_password(self, name: str, password: str) -> None:
        self._change("password", name, f"set the password of {name}",
                     lambda: self.service().set_password(name, password),
                     lambda u: f"New password set for {u.name}; their sign-ins ended.")

    def _change(self, action: str, subject: str, doing: str,
                call: Callable[[], UserAccount], said: Callable[[UserAccount], str]) -> None:
        if not self.allowed:
            self._say(f"Could not {doing}: {self.actor.user} ({self.actor.role.value}) may "
                      f"not {Permission.USER_ADMIN.action}.", "error")
            self.refused.emit(self.result_label.text())
            return
        self._busy = True
        self._sync_buttons()
        self._say(f"Saving: {doing}…", "secondary")

        def done(account: UserAccount) -> None:
            self._busy = False
            self._changes += 1
            self.model.upsert([account])
            self.select(account.name)
            self.status.updated(self._summary())
            self._sync_buttons()
            self._say("✓ " + said(account), "success")
            self.changed.emit(action, account)

        def failed(exc: BaseException) -> None:
            self._busy = False
            self._sync_buttons()
            self._say(f"Could not {doing}: {_why(exc, subject)}", "error")
            self.refused.emit(self.result_label.text())
            if isinstance(exc, ConcurrentModification | NotFound):
                self.reload()

        self._background.start(call, done, failed)

    def _say(self, text: str, role: str) -> None:
        label = self.result_label
        label.setText(text)
        label.setVisible(bool(text))
        label.setProperty("role", role)
        label.style().unpolish(label)
        label.style().polish(label)


def build_users_page(context: AppContext, **_: Any) -> UsersPage:
    return UsersPage(context)
