"""The changes waiting in the outbox, and the decision on those the server
refused meanwhile (someone else resolved the alert, edited the device): retry
on the new state, or drop. Nothing is overwritten without the person saying so.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.ports.offline import ActionState, OfflineWork, QueuedAction

_STATE = {ActionState.PENDING: "waiting to be sent",
          ActionState.CONFLICT: "conflict: changed by someone else",
          ActionState.REFUSED: "refused by the server"}
COLUMNS = ("Action", "State", "Made at", "What the server said")


class PendingActionsDialog(QDialog):
    def __init__(self, work: OfflineWork, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PendingActionsDialog")
        self.setWindowTitle("Queued actions")
        self.resize(980, 380)
        self.work = work
        layout = QVBoxLayout(self)
        self.intro = QLabel("Changes you made that the server has not applied yet. Those "
                            "marked as a conflict were changed by someone else meanwhile: "
                            "retry yours on the new state, or drop it.", self)
        self.intro.setWordWrap(True)
        layout.addWidget(self.intro)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        layout.addWidget(self.table, 1)
        buttons = QDialogButtonBox(self)
        self.retry_button = QPushButton("Retry on the new state", self)
        self.retry_button.setToolTip("Send your change again over what is stored now")
        self.drop_button = QPushButton("Drop", self)
        self.drop_button.setToolTip("Forget your change: what is stored now stands")
        self.send_button = QPushButton("Send now", self)
        self.send_button.setToolTip("Try every waiting action now")
        buttons.addButton(self.retry_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.drop_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.send_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        self.retry_button.clicked.connect(self.retry_selected)
        self.drop_button.clicked.connect(self.drop_selected)
        self.send_button.clicked.connect(self._send_now)
        layout.addWidget(buttons)
        self.rows: list[QueuedAction] = []
        self.reload()

    def reload(self) -> None:
        self.rows = self.work.actions()
        self.table.setRowCount(len(self.rows))
        for i, action in enumerate(self.rows):
            made = action.created_at.astimezone()
            message = action.message
            if action.changed_by:
                message = f"{message} (by {action.changed_by})"
            for col, text in enumerate((action.label, _STATE[action.state],
                                        f"{made:%H:%M:%S}", message)):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(i, col, item)
        self.table.resizeRowsToContents()
        first = next((i for i, a in enumerate(self.rows) if a.needs_decision), 0)
        if self.rows:
            self.table.selectRow(first)
        self._update_buttons()

    def selected(self) -> QueuedAction | None:
        rows = self.table.selectionModel().selectedRows()
        return self.rows[rows[0].row()] if rows else None

    def retry_selected(self) -> None:
        action = self.selected()
        if action is not None:
            self.work.retry(action.action_id)
            self.reload()

    def drop_selected(self) -> None:
        action = self.selected()
        if action is not None:
            self.work.drop(action.action_id)
            self.reload()

    def _send_now(self) -> None:
        self.work.send_now()
        self.reload()

    def _update_buttons(self) -> None:
        action = self.selected()
        decide = action is not None and action.needs_decision
        self.retry_button.setEnabled(decide)
        self.drop_button.setEnabled(action is not None)
        self.send_button.setEnabled(any(a.state is ActionState.PENDING for a in self.rows))


