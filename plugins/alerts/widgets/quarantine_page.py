"""Rejected messages: what the hub quarantined, why, and the bytes themselves.

Loads the rejected messages (newest first) through the alerts use cases
(``context.api.alerts.list_quarantine``: every role may read them, limited to
its organization) on a worker thread and then follows MessageRejected
events, inserting at the top; without a live feed, or on the REST API, it polls.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, QTimer
from PySide6.QtGui import QFontDatabase, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from console.widgets.background import BackgroundCall
from console.widgets.tables import RolesInOneCall, configure_row_table
from core.context import AppContext
from core.model.events import FleetEvent, MessageRejected
from core.model.link import QuarantinedMessage
from core.ports.fleet_api.alerts import AlertFeatures, AlertsApi, QuarantineListing
from core.text import plural

from ._common import LiveEvents, local_time, relative_time

log = logging.getLogger(__name__)

Index = QModelIndex | QPersistentModelIndex
LIMIT = 2000
POLL_MS = 10_000
NONE_REJECTED = "No rejected messages. Every message received from the fleet could be read."
COLUMNS = ("Received", "Reason", "Device", "Topic", "Detail", "Bytes")


def hex_dump(data: bytes, width: int = 16) -> str:
    lines = []
    for offset in range(0, len(data), width):
        chunk = data[offset:offset + width]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {hexes:<{width * 3}} {text}")
    return "\n".join(lines)


def as_text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


class QuarantineModel(RolesInOneCall, QAbstractTableModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[QuarantinedMessage] = []

    def set_messages(self, messages: list[QuarantinedMessage]) -> None:
        self.beginResetModel()
        self._rows = list(messages[:LIMIT])
        self.endResetModel()

    def prepend(self, messages: list[QuarantinedMessage]) -> None:
        """``messages`` newest first; they go on top, the oldest fall off the end."""
        if not messages:
            return
        self.beginInsertRows(QModelIndex(), 0, len(messages) - 1)
        self._rows[0:0] = messages
        self.endInsertRows()
        if len(self._rows) > LIMIT:
            self.beginRemoveRows(QModelIndex(), LIMIT, len(self._rows) - 1)
            del self._rows[LIMIT:]
            self.endRemoveRows()

    def message(self, row: int) -> QuarantinedMessage:
        return self._rows[row]

    def messages(self) -> list[QuarantinedMessage]:
        return list(self._rows)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        m = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (relative_time(m.received_at), m.reason, m.device_id or "—", m.topic,
                    m.detail, str(len(m.payload)))[col]
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == 0:
                return local_time(m.received_at)
            if col in (3, 4):
                return (m.topic, m.detail)[col - 3]
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 5:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


def _session(context: AppContext) -> tuple[AlertsApi, AlertFeatures]:
    """Blocking (the first use builds the backend): runs on a worker thread."""
    alerts = context.api.alerts
    return alerts, alerts.features()


class QuarantinePage(QWidget):
    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("QuarantinePage")
        self.context = context
        self.alerts: AlertsApi | None = None
        self.counts: dict[str, int] = {}
        self.live: LiveEvents | None = None
        self._background = BackgroundCall(self)

        heading = QLabel("Rejected messages")
        heading.setProperty("role", "title")
        self.counts_label = QLabel("")
        self.counts_label.setObjectName("QuarantineCounts")
        self.counts_label.setProperty("role", "secondary")
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.reason_filter = QComboBox()
        self.reason_filter.addItem("All reasons", None)
        self.reason_filter.setMinimumWidth(200)
        self.device_filter = QLineEdit()
        self.device_filter.setPlaceholderText("Device id (exact)")
        self.device_filter.setClearButtonEnabled(True)
        self.status = QLabel("")
        self.status.setProperty("role", "secondary")
        self.status.setWordWrap(True)

        self.model = QuarantineModel(self)
        self.table = QTableView()
        self.table.setObjectName("QuarantineTable")
        self.table.setModel(self.model)
        configure_row_table(self.table, QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        for col, width in ((0, 90), (1, 150), (2, 110), (3, 260), (5, 60)):
            self.table.setColumnWidth(col, width)
        self.table.selectionModel().currentRowChanged.connect(self._row_changed)

        self.payload_title = QLabel("Select a message to see its payload")
        self.payload_title.setProperty("role", "secondary")
        self.text_mode = QRadioButton("Text")
        self.hex_mode = QRadioButton("Hex")
        self.text_mode.setChecked(True)
        modes = QButtonGroup(self)
        modes.addButton(self.text_mode)
        modes.addButton(self.hex_mode)
        self.text_mode.toggled.connect(lambda _on: self._show_payload())
        self.payload = QPlainTextEdit()
        self.payload.setObjectName("QuarantinePayload")
        self.payload.setReadOnly(True)
        self.payload.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.payload.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        payload_box = QWidget()
        pl = QVBoxLayout(payload_box)
        pl.setContentsMargins(0, 6, 0, 0)
        bar = QHBoxLayout()
        bar.addWidget(self.payload_title, 1)
        bar.addWidget(self.text_mode)
        bar.addWidget(self.hex_mode)
        pl.addLayout(bar)
        pl.addWidget(self.payload, 1)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(payload_box)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)

        top = QHBoxLayout()
        top.addWidget(heading)
        top.addSpacing(16)
        top.addWidget(self.counts_label, 1)
        top.addWidget(self.refresh_button)
        filters = QHBoxLayout()
        filters.addWidget(self.reason_filter)
        filters.addWidget(self.device_filter, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.addLayout(top)
        layout.addLayout(filters)
        layout.addWidget(self.status)
        layout.addWidget(self.splitter, 1)

        self.reason_filter.currentIndexChanged.connect(lambda _i: self.refresh())
        self._device_timer = QTimer(self, singleShot=True, interval=300)
        self._device_timer.timeout.connect(self.refresh)
        self.device_filter.textChanged.connect(lambda _t: self._device_timer.start())
        QShortcut(QKeySequence(QKeySequence.StandardKey.Refresh), self, self.refresh)
        self._poll = QTimer(self, interval=POLL_MS)
        self._poll.timeout.connect(self._poll_new)
        self._set_status("Loading…")
        self._background.start(lambda: _session(context), self._ready, self._failed)

    # ------------------------------------------------------------ loading
    def _ready(self, session: tuple[AlertsApi, AlertFeatures]) -> None:
        alerts, features = session
        if not features.quarantine:
            self._set_status("This backend does not keep rejected messages.")
            self.refresh_button.setEnabled(False)
            return
        self.alerts = alerts
        live = self.context.backend.live  # live events stay on the backend's feed for now
        if live is not None:
            self.live = LiveEvents(live, {MessageRejected}, self)
            self.live.batch.connect(self.apply_events)
        if live is None or self.context.config.profile.api_url:
            # A console on the REST API polls as well: on AWS the stream consumer
            # quarantines, and IoT Core's live topics carry no rejected messages (a
            # message both polled and heard is shown once: merged by its id).
            self._poll.start()
        self.refresh()

    def _failed(self, exc: BaseException) -> None:
        self.refresh_button.setEnabled(True)
        self._set_status(f"Could not load rejected messages: {exc}")

    def reason(self) -> str | None:
        value = self.reason_filter.currentData()
        return str(value) if value else None

    def device(self) -> str | None:
        return self.device_filter.text().strip() or None

    def refresh(self) -> None:
        if self.alerts is None:
            return
        alerts, reason, device = self.alerts, self.reason(), self.device()
        self.refresh_button.setEnabled(False)
        self._background.cancel("poll")  # the full load answers for it
        # key: a newer filter supersedes a load still running (latest wins)
        self._background.start(
            lambda: alerts.list_quarantine(reason=reason, device_id=device, limit=LIMIT),
            self._loaded, self._failed, key="load")

    def _loaded(self, snap: QuarantineListing) -> None:
        self.refresh_button.setEnabled(True)
        self.model.set_messages(snap.messages)
        self._set_counts(snap.counts)
        self._set_status("" if snap.messages else NONE_REJECTED)
        self._show_payload()

    def _poll_new(self) -> None:
        if self.alerts is None or not self.refresh_button.isEnabled():
            return  # a full load is running
        alerts, reason, device = self.alerts, self.reason(), self.device()
        self._background.start(
            lambda: alerts.list_quarantine(reason=reason, device_id=device, limit=200),
            self._merge_polled, lambda exc: log.debug("quarantine poll failed: %s", exc),
            key="poll")

    def _merge_polled(self, snap: QuarantineListing) -> None:
        known = {m.message_id for m in self.model.messages()[:400]}
        top = self.model.messages()[0].received_at if self.model.rowCount() else None
        fresh = [m for m in snap.messages if m.message_id not in known
                 and (top is None or m.received_at >= top)]
        self.model.prepend(fresh)
        self._no_longer_empty()
        self._set_counts(snap.counts)

    # ------------------------------------------------------------ live
    def apply_events(self, events: list[FleetEvent]) -> None:
        fresh: list[QuarantinedMessage] = []
        counts = dict(self.counts)
        reason, device = self.reason(), self.device()
        known = {m.message_id for m in self.model.messages()[:400]
                 if m.message_id is not None}  # polled already
        for event in events:
            if not isinstance(event, MessageRejected) or event.message.message_id in known:
                continue
            message = event.message
            counts[message.reason] = counts.get(message.reason, 0) + 1
            if (reason is None or message.reason == reason) and (
                    device is None or message.device_id == device):
                fresh.append(message)
        fresh.sort(key=lambda m: m.received_at, reverse=True)
        self.model.prepend(fresh)
        self._no_longer_empty()
        if counts != self.counts:
            self._set_counts(counts)
        if fresh:
            self._set_status("")

    def _set_counts(self, counts: dict[str, int]) -> None:
        self.counts = dict(counts)
        total = sum(counts.values())
        parts = [f"<b>{n}</b> {reason}" for reason, n in
                 sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        self.counts_label.setText(f"{total} rejected" + (":  " + " · ".join(parts)
                                                          if parts else ""))
        current = self.reason()
        self.reason_filter.blockSignals(True)
        self.reason_filter.clear()
        self.reason_filter.addItem("All reasons", None)
        for reason in sorted(counts):
            self.reason_filter.addItem(f"{reason} ({counts[reason]})", reason)
        index = self.reason_filter.findData(current) if current else 0
        self.reason_filter.setCurrentIndex(max(index, 0))
        self.reason_filter.blockSignals(False)

    def _no_longer_empty(self) -> None:
        if self.model.rowCount() and self.status.text() == NONE_REJECTED:
            self._set_status("")

    def _set_status(self, text: str) -> None:
        self.status.setText(text)
        self.status.setVisible(bool(text))

    # ------------------------------------------------------------ payload
    def _row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._show_payload()

    def selected_message(self) -> QuarantinedMessage | None:
        index = self.table.selectionModel().currentIndex()
        if not index.isValid() or index.row() >= self.model.rowCount():
            return None
        return self.model.message(index.row())

    def _show_payload(self) -> None:
        message = self.selected_message()
        if message is None:
            self.payload_title.setText("Select a message to see its payload")
            self.payload.setPlainText("")
            return
        self.payload_title.setText(
            f"{message.reason} · {message.topic} · {plural(len(message.payload), 'byte')} · "
            f"{local_time(message.received_at)}\n{message.detail}")
        self.payload.setPlainText(hex_dump(message.payload) if self.hex_mode.isChecked()
                                  else as_text(message.payload))


def build_quarantine_page(context: AppContext) -> QuarantinePage:
    return QuarantinePage(context)


__all__ = ["QuarantinePage", "build_quarantine_page", "hex_dump"]
