"""The live view of one deployment: how far it is, how fast it goes, which
device is where, and the buttons to pause, cancel or retry it.

The store is polled on a worker thread (the rollout itself runs in the hub);
the next poll is scheduled only after the previous one was shown, and never
sooner than twice what it took, so 10,000 targets on a slow database slow the
refresh down rather than the window.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from console.widgets.background import BackgroundCall
from console.widgets.signals import safe_emit
from console.widgets.tables import configure_row_table
from core.context import AppContext
from core.model import Deployment, DeploymentStatus
from core.model.roles import Permission
from core.model.timeutil import utcnow
from core.ports.fleet_api.deployments import DeploymentsApi, TargetSpec
from core.text import plural, plural_word
from plugins.firmware.widgets.common import (
    DEPLOYMENT_COLOURS,
    STATE_COLOURS,
    STATES,
    TERMINAL,
    badge_style,
    describe_rate,
    error_text,
    fmt_time,
    guard,
    outcome_text,
    reason_sentence,
    show_message,
    state_title,
)
from plugins.firmware.widgets.models import (
    ExecRow,
    ExecutionFilter,
    ExecutionTableModel,
    RateSeries,
    build_rows,
    changed_rows,
    rate_series,
)
from plugins.firmware.widgets.rate_chart import RateChart

POLL_MS = 1000
FINISHED_POLL_MS = 5000
AUTO_ABORT = "automatic abort"
NO_PROGRESS = ""  # not "0 of 1 devices finished" when nothing is selected
PAUSE_UNAVAILABLE = "AWS IoT Jobs cannot pause a rollout; cancel instead"


@dataclass(frozen=True)
class MonitorSnapshot:
    deployment: Deployment
    counts: dict[str, int]
    rows: list[ExecRow]
    changed: list[int] | None  # None: other targets than shown, reset the table
    series: RateSeries
    took_s: float
    can_pause: bool = True  # the backend's answer (AWS IoT Jobs: False)

    @property
    def finished(self) -> int:
        return sum(n for s, n in self.counts.items() if s in TERMINAL)

    @property
    def retriable(self) -> int:
        return self.counts.get("FAILED", 0) + self.counts.get("TIMED_OUT", 0)


def _dot(colour: str) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor(colour))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawEllipse(1, 1, 10, 10)
    painter.end()
    return QIcon(pixmap)


class CancelDialog(QDialog):
    """Confirm a cancel; ``force`` also stops devices that are installing.

    Opened with the counts of the last poll, which may be a second (or, on AWS
    right after a rollout started, a whole poll) old: the monitor reads the
    deployment afresh and the button stays disabled until it has, so nobody
    confirms "none is installing now" while a device installs."""

    def __init__(self, deployment: Deployment, counts: dict[str, int],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.deployment = deployment
        self.setWindowTitle(f"Cancel {deployment.deployment_id}")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.force = QCheckBox()
        self.set_counts(counts)
        self.buttons = QDialogButtonBox()
        self.confirm = self.buttons.addButton("Cancel deployment",
                                              QDialogButtonBox.ButtonRole.AcceptRole)
        keep = self.buttons.addButton("Keep running", QDialogButtonBox.ButtonRole.RejectRole)
        keep.setDefault(True)  # Enter must not cancel a rollout by accident
        self.confirm.setEnabled(False)
        self.confirm.setToolTip("Checking where each device is…")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(self.force)
        layout.addWidget(self.buttons)

    def refreshed(self, counts: dict[str, int]) -> None:
        """The counts as they are now: the person may confirm."""
        self.set_counts(counts)
        self.confirm.setEnabled(True)
        self.confirm.setToolTip("")

    def set_counts(self, counts: dict[str, int]) -> None:
        """Kept current by the monitor's polls while the dialog is open: the
        numbers a person confirms are the ones that will be canceled."""
        self.counts = dict(counts)
        waiting = counts.get("PENDING", 0) + counts.get("QUEUED", 0)
        installing = counts.get("IN_PROGRESS", 0)
        self.text.setText(
            f"Cancel the rollout of <b>{self.deployment.firmware_id}</b>?<br>"
            f"{plural(waiting, 'device')} that {plural_word(waiting, 'has')} not started "
            f"will not be updated. A canceled deployment cannot be resumed.")
        self.force.setText(
            f"Also stop the {plural(installing, 'device')} that {plural_word(installing, 'is')} "
            "installing now (force; they roll back or fail)" if installing else
            "Also stop devices that are installing (none is installing now)")
        self.force.setEnabled(installing > 0)
        if installing == 0:
            self.force.setChecked(False)


class DeploymentMonitor(QWidget):
    updated = Signal()  # a poll was shown
    action_finished = Signal(str)
    action_failed = Signal(str)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.actor = context.actor
        self.deployment_id: str | None = None
        self.snapshot: MonitorSnapshot | None = None
        self.cancel_dialog: CancelDialog | None = None
        self._background = BackgroundCall(self)
        self._busy = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.poll)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._header())
        for label in self._notes():
            layout.addWidget(label)
        layout.addWidget(self._progress_bar())
        layout.addLayout(self._state_chips())
        layout.addWidget(self._chart_and_table(), 1)
        self._connect()
        self._update_buttons()

    # ------------------------------------------------------------ building
    def _header(self) -> QHBoxLayout:
        """Title, state badge and the action buttons."""
        self.title = QLabel("No deployment selected")
        self.title.setProperty("role", "title")
        self.badge = QLabel()
        self.badge.setVisible(False)
        self.pause_button = QPushButton("Pause")
        self.cancel_button = QPushButton("Cancel…")
        self.retry_button = QPushButton("Retry failed")
        head = QHBoxLayout()
        head.addWidget(self.title)
        head.addWidget(self.badge)
        head.addStretch(1)
        for button in (self.pause_button, self.retry_button, self.cancel_button):
            button.setEnabled(False)
            head.addWidget(button)
        return head

    def _notes(self) -> tuple[QLabel, QLabel, QLabel]:
        """Subtitle (what and how), the state banner and the last action's message."""
        self.subtitle = QLabel()
        self.subtitle.setProperty("role", "secondary")
        self.subtitle.setWordWrap(True)
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setVisible(False)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setVisible(False)
        return self.subtitle, self.banner, self.message

    def _progress_bar(self) -> QProgressBar:
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat(NO_PROGRESS)
        return self.progress

    def _state_chips(self) -> QHBoxLayout:
        """One chip per execution state: its count, and a click filters the table."""
        self.chips: dict[str, QPushButton] = {}
        chips = QHBoxLayout()
        chips.setSpacing(4)
        for state in STATES:
            chip = QPushButton(f"{state_title(state)} 0")
            chip.setIcon(_dot(STATE_COLOURS[state]))
            chip.setIconSize(QSize(10, 10))
            chip.setFlat(True)
            chip.setToolTip(f"Show only {state_title(state).lower()} devices")
            chip.clicked.connect(lambda _=False, s=state: self.filter_state(s))
            chip.setVisible(state != "REMOVED")
            self.chips[state] = chip
            chips.addWidget(chip)
        chips.addStretch(1)
        return chips

    def _chart_and_table(self) -> QSplitter:
        self.chart = RateChart()
        body = QSplitter(Qt.Orientation.Vertical)
        body.addWidget(self.chart)
        body.addWidget(self._device_table())
        body.setStretchFactor(0, 1)
        body.setStretchFactor(1, 2)
        body.setSizes([200, 400])
        return body

    def _device_table(self) -> QWidget:
        """The targets, one row each, with a text and a state filter above."""
        self.model = ExecutionTableModel(self)
        self.proxy = ExecutionFilter(self)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        configure_row_table(self.table)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # target order until asked
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        for col, width in enumerate((150, 100, 112, 76, 340, 76, 84)):
            self.table.setColumnWidth(col, width)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter devices (id, step, reason)")
        self.search.setClearButtonEnabled(True)
        self.state_filter = QComboBox()
        self.state_filter.addItem("All states", "")
        for state in STATES:
            self.state_filter.addItem(state_title(state), state)
        self.shown_label = QLabel()
        self.shown_label.setProperty("role", "secondary")
        filters = QHBoxLayout()
        filters.addWidget(self.search, 1)
        filters.addWidget(self.state_filter)
        filters.addWidget(self.shown_label)
        box = QWidget()
        box_layout = QVBoxLayout(box)
        box_layout.setContentsMargins(0, 0, 0, 0)
        box_layout.addLayout(filters)
        box_layout.addWidget(self.table, 1)
        return box

    def _connect(self) -> None:
        self.pause_button.clicked.connect(self._pause_or_resume)
        self.cancel_button.clicked.connect(self.ask_cancel)
        self.retry_button.clicked.connect(self.retry_failed)
        self.search.textChanged.connect(self._filter_text)
        self.state_filter.currentIndexChanged.connect(self._filter_combo)

    # ------------------------------------------------------------ polling
    def show_deployment(self, deployment_id: str | None) -> None:
        if deployment_id == self.deployment_id:
            return
        self.deployment_id = deployment_id
        self._background.cancel("poll")  # an answer about the previous deployment is dropped
        self.snapshot = None
        self.model.reset_rows([])
        self.chart.set_series(rate_series([], utcnow()))
        show_message(self.message, "")
        self.banner.setVisible(False)
        self.badge.setVisible(False)
        self.title.setText(deployment_id or "No deployment selected")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat(NO_PROGRESS)
        self.subtitle.setText("Loading…" if deployment_id else
                              "Select a deployment to follow its rollout.")
        self._update_buttons()
        self.poll()

    def poll(self) -> None:
        """Read the deployment now (F5); polls never overlap."""
        self._timer.stop()
        if self.deployment_id is None or self._background.is_running("poll"):
            return
        if not self.isVisible() and self.snapshot is not None:
            self._timer.start(POLL_MS)
            return
        deployment_id = self.deployment_id
        shown = self.model.rows  # replaced, never mutated: safe to read on the worker

        def load() -> MonitorSnapshot:
            started = time.perf_counter()
            deployments = self.context.api.deployments
            progress = deployments.status(deployment_id)
            d, counts = progress.deployment, progress.counts
            executions = deployments.executions(deployment_id)
            rows = build_rows(d.targets, executions,
                              canceled=d.status is DeploymentStatus.CANCELED)
            changed = changed_rows(shown, rows)
            # A finished deployment's time axis ends when it finished.
            series = rate_series(executions, d.updated_at if d.is_finished else utcnow(),
                                 d.created_at)
            return MonitorSnapshot(d, counts, rows, changed, series,
                                   time.perf_counter() - started, progress.can_pause)

        def done(snapshot: MonitorSnapshot) -> None:
            self._show(snapshot)
            wait = FINISHED_POLL_MS if snapshot.deployment.is_finished else POLL_MS
            self._timer.start(max(wait, int(snapshot.took_s * 2000)))

        def failed(exc: BaseException) -> None:
            show_message(self.message, f"Could not read {deployment_id}: {error_text(exc)}")
            self._timer.start(FINISHED_POLL_MS)

        self._background.start(load, done, failed, key="poll")

    def _show(self, snap: MonitorSnapshot) -> None:
        d = snap.deployment
        self.snapshot = snap
        if snap.changed is None:
            self.model.reset_rows(snap.rows)
        else:
            self.model.apply(snap.rows, snap.changed)
        self.title.setText(d.deployment_id)
        self.badge.setText(d.status.value.replace("_", " "))
        self.badge.setStyleSheet(badge_style(DEPLOYMENT_COLOURS.get(d.status.value, "#6b7280")))
        self.badge.setVisible(True)
        spec = d.target_spec.get("kind") and _describe_spec(d.target_spec)
        parts = [f"<b>{d.firmware_id}</b>", plural(len(d.targets), "device")
                 + (f" ({spec})" if spec else ""),
                 f"created by {d.created_by or '?'} {fmt_time(d.created_at)}",
                 describe_rate(d.config)]
        if d.config.abort:
            parts.append("abort when " + "; ".join(c.describe() for c in d.config.abort))
        if d.description:
            parts.append(f"“{d.description}”")
        self.subtitle.setText(" · ".join(parts))
        self._show_banner(d)
        total = len(d.targets)
        # The bar fills with updated devices only: a canceled or failed target is
        # final but not a success, and a full bar reads as one.
        self.progress.setRange(0, total)
        self.progress.setValue(snap.counts.get("SUCCEEDED", 0))
        self.progress.setFormat(outcome_text(snap.counts, total))
        for state, chip in self.chips.items():
            n = snap.counts.get(state, 0)
            chip.setText(f"{state_title(state)} {n}")
            if state == "REMOVED":
                chip.setVisible(n > 0)
        self.chart.set_series(snap.series)
        if self.cancel_dialog is not None and self.cancel_dialog.isVisible():
            self.cancel_dialog.set_counts(snap.counts)
        self._update_count()
        self._update_buttons()
        safe_emit(self.updated)

    def _show_banner(self, d: Deployment) -> None:
        if d.status is DeploymentStatus.CANCELED and d.reason.startswith(AUTO_ABORT):
            show_message(self.banner, f"⚠ Canceled automatically — {d.reason}. No further "
                         "devices are notified; fix the image and create a new deployment.")
        elif d.status is DeploymentStatus.CANCELED:
            show_message(self.banner, reason_sentence(d.reason, "Canceled"), "secondary")
        elif d.status is DeploymentStatus.PAUSED:
            paused = reason_sentence(d.reason, "Paused") if d.reason else "Paused."
            show_message(self.banner, f"{paused} No further devices are notified until it "
                         "is resumed.", "secondary")
        elif d.status is DeploymentStatus.COMPLETED:
            show_message(self.banner, "Completed: every target has finished.", "success")
        else:
            show_message(self.banner, "")

    # ------------------------------------------------------------ filters
    def filter_state(self, state: str) -> None:
        index = self.state_filter.findData(state)
        current = self.state_filter.currentData()
        self.state_filter.setCurrentIndex(0 if current == state else max(index, 0))

    def _filter_combo(self, _index: int) -> None:
        state = self.state_filter.currentData()
        self.proxy.set_states([state] if state else [])
        self._update_count()

    def _filter_text(self, text: str) -> None:
        self.proxy.set_text(text)
        self._update_count()

    def _update_count(self) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        self.shown_label.setText(f"{shown} of {total}" if shown != total
                                 else plural(total, "device"))

    # ------------------------------------------------------------ actions
    def _update_buttons(self) -> None:
        snap = self.snapshot
        status = snap.deployment.status if snap else None
        running = status in (DeploymentStatus.SCHEDULED, DeploymentStatus.IN_PROGRESS)
        paused = status is DeploymentStatus.PAUSED
        self.pause_button.setText("Resume" if paused else "Pause")
        idle = not self._busy
        guard(self.pause_button, self.actor, Permission.DEPLOYMENT_CONTROL,
              idle and (running or paused),
              "Let devices that have not started continue" if paused
              else "Notify no further devices until resumed")
        if snap is not None and not snap.can_pause:  # the backend says so before any click
            self.pause_button.setEnabled(False)
            self.pause_button.setToolTip(PAUSE_UNAVAILABLE)
        guard(self.cancel_button, self.actor, Permission.DEPLOYMENT_CANCEL,
              idle and snap is not None and not snap.deployment.is_finished,
              "Stop the rollout for good")
        guard(self.retry_button, self.actor, Permission.DEPLOYMENT_CONTROL,
              idle and snap is not None and snap.retriable > 0
              and status is not DeploymentStatus.CANCELED,
              "Queue another attempt for devices that FAILED or TIMED OUT")

    def _pause_or_resume(self) -> None:
        snap = self.snapshot
        if snap is not None and snap.deployment.status is DeploymentStatus.PAUSED:
            self.resume()
        else:
            self.pause()

    def pause(self) -> None:
        self._act("paused", lambda service, d: service.pause(d))

    def resume(self) -> None:
        self._act("resumed", lambda service, d: service.resume(d))

    def retry_failed(self) -> None:
        self._act("retry", lambda service, d: service.retry_failed(d))

    def cancel(self, force: bool = False) -> None:
        self._act("canceled", lambda service, d: service.cancel(d, force=force))

    def ask_cancel(self) -> None:
        if self.snapshot is None:
            return
        if self.cancel_dialog is not None:
            self.cancel_dialog.deleteLater()
        dialog = CancelDialog(self.snapshot.deployment, self.snapshot.counts, self)
        dialog.accepted.connect(lambda: self.cancel(dialog.force.isChecked()))
        self.cancel_dialog = dialog
        dialog.open()
        deployment_id = self.snapshot.deployment.deployment_id

        def fresh() -> dict[str, int]:
            return self.context.api.deployments.status(deployment_id).counts

        def failed(exc: BaseException) -> None:
            # the last poll's counts, said to be so: cancelling must stay possible
            dialog.refreshed(dialog.counts)
            dialog.confirm.setToolTip(f"Could not read the current counts: "
                                      f"{error_text(exc)}")

        self._background.start(fresh, dialog.refreshed, failed, key="cancel-counts")

    def _act(self, what: str, call: Callable[[DeploymentsApi, str], object]) -> None:
        deployment_id = self.deployment_id
        if deployment_id is None:
            return
        self._busy = True
        self._update_buttons()

        def run() -> object:
            return call(self.context.api.deployments, deployment_id)

        def done(result: object) -> None:
            self._busy = False
            if what == "retry":
                n = len(result) if isinstance(result, list) else 0
                text = f"{plural(n, 'device')} queued for another attempt."
            else:
                text = f"{deployment_id} {what}."
            show_message(self.message, text, "success")
            self._update_buttons()
            self.poll()
            safe_emit(self.action_finished, what)

        def failed(exc: BaseException) -> None:
            self._busy = False
            text = error_text(exc)
            show_message(self.message, text)
            self._update_buttons()
            safe_emit(self.action_failed, text)

        self._background.start(run, done, failed)


def _describe_spec(raw: dict[str, object]) -> str:
    try:
        return TargetSpec.from_json(dict(raw)).describe()
    except Exception:  # noqa: BLE001 - an old or foreign spec is shown without a summary
        return ""
