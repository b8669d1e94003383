"""The first-run offer on the Alerts page: a database without alert rules
never raises an alert, and a new team database starts with none.

The banner says so and offers the default rule set in one click, through
the alerts use cases (role-checked and audited like any rule edit). Whoever may not
edit rules sees the button greyed out and, on the page, who can do it
instead; the offer disappears as soon as the table has rules, whoever added
them (this console, another one, or ``smartiot rules``).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from console.widgets.background import BackgroundCall
from core.context import AppContext
from core.model.roles import GRANTS, Permission

RECHECK_MS = 15_000


class DefaultRulesBanner(QFrame):
    """Hidden until the rules table is known to be empty."""

    added = Signal(int)
    checked = Signal(bool)  # after every look at the rules table: True = empty

    def __init__(self, context: AppContext, on_added: Callable[[], object] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("DefaultRulesBanner")
        self.context = context
        self.alerts = context.api.alerts
        self._background = BackgroundCall(self)
        self.text = QLabel("This database has no alert rules, so nothing will raise an alert. "
                           "Start with the default rules (temperature, pump vibration and "
                           "bearing wear, battery, silent devices) and tune them under Rules….")
        self.text.setWordWrap(True)
        self.text.setProperty("role", "warning")
        self.add_button = QPushButton("Add the default rules")
        self.add_button.setProperty("accent", True)
        self.add_button.clicked.connect(self.add_defaults)
        self.dismiss_button = QPushButton("Not now")
        self.dismiss_button.clicked.connect(self.dismiss)
        self.note = QLabel()
        self.note.setProperty("role", "secondary")
        self.note.setWordWrap(True)
        actor = context.actor
        if not actor.can(Permission.RULE_EDIT):
            self.add_button.setEnabled(False)
            allowed = " or ".join(r.value for r, g in GRANTS.items() if Permission.RULE_EDIT in g)
            self.note.setText(f"You are signed in as {actor.role.value}: adding rules needs the "
                              f"role {allowed}. Ask one of them to add the default rules here "
                              "or with `smartiot rules add --defaults`.")
        self.note.setVisible(bool(self.note.text()))
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.text, 1)
        row.addWidget(self.add_button)
        row.addWidget(self.dismiss_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.note)
        if on_added is not None:
            self.added.connect(lambda _n: on_added())
        self._dismissed = False
        self._timer = QTimer(self, interval=RECHECK_MS)
        self._timer.timeout.connect(self.check)
        self.hide()
        self.check()

    def check(self) -> None:
        if self._dismissed or not self.alerts.features().rules:
            self._show(False)
            return
        alerts = self.alerts
        self._background.start(lambda: not alerts.list_rules(), self._show, lambda _exc: None,
                               key="check")

    def _show(self, empty: bool) -> None:
        visible = bool(empty) and not self._dismissed
        self.checked.emit(bool(empty))
        self.setVisible(visible)
        if visible:
            self._timer.start()
        else:
            self._timer.stop()

    def dismiss(self) -> None:
        self._dismissed = True
        self._show(False)

    def add_defaults(self) -> None:
        alerts = self.alerts
        self.add_button.setEnabled(False)

        def done(added: list[object]) -> None:
            self._show(False)
            self.added.emit(len(added))

        def failed(exc: BaseException) -> None:
            self.add_button.setEnabled(True)
            self.note.setText(f"Could not add the default rules: {exc}")
            self.note.setProperty("role", "error")
            self.note.style().unpolish(self.note)
            self.note.style().polish(self.note)
            self.note.show()
            self.check()

        self._background.start(alerts.add_default_rules, done, failed)
