"""The alert queue page: filters, counts, live rows, actions and details.

Data: the page loads through ``backend.alerts`` on a worker thread, then
follows ALERT events from ``backend.live`` (coalesced on the GUI thread) and
updates rows in place. Without a live feed it polls the store every few
seconds and merges the result the same way, so no reset happens per change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import partial
from typing import Any

from PySide6.QtCore import QEvent, QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from console.theme import current_colors
from console.widgets.background import BackgroundCall
from console.widgets.tables import configure_row_table
from core.context import AppContext
from core.model import Alert, AlertState, Severity
from core.ports import changes
from core.ports.alerts import AlertQuery
from core.ports.backend import Backend
from core.ports.live import EventKind, FleetEvent
from core.services.fleet_health import load_attention_counts
from core.text import plural

from ._common import SEVERITY_COLOURS, SEVERITY_ORDER, LiveEvents, set_badge
from .actions import ActionResult, AlertActions
from .alert_model import (
    C_ACK,
    C_DEVICE,
    C_MESSAGE,
    C_RAISED,
    C_RULE,
    C_SEVERITY,
    C_SNOOZED,
    C_STATE,
    C_VALUE,
    COLUMNS,
    OPEN_STATES,
    AlertFilter,
    AlertTableModel,
)
from .detail import AlertDetailPanel
from .first_run import DefaultRulesBanner
from .status import ATTENTION_TIP

log = logging.getLogger(__name__)

PAGE_ID = "alerts"
LOAD_LIMIT = 5000
POLL_MS = 5000
COUNTS_DELAY_MS = 400

STATE_CHOICES: list[tuple[str, frozenset[AlertState]]] = [
    ("Open", OPEN_STATES),
    ("Active", frozenset({AlertState.ACTIVE})),
    ("Acknowledged", frozenset({AlertState.ACKNOWLEDGED})),
    ("Resolved", frozenset({AlertState.RESOLVED})),
    ("All states", frozenset()),
]
SEVERITY_CHOICES: list[tuple[str, frozenset[Severity]]] = [
    ("All severities", frozenset()),
    ("Critical", frozenset({Severity.CRITICAL})),
    ("Warning and up", frozenset({Severity.CRITICAL, Severity.WARNING})),
    ("Warning", frozenset({Severity.WARNING})),
    ("Info", frozenset({Severity.INFO})),
]
TIME_CHOICES: list[tuple[str, timedelta | None]] = [
    ("Any time", None),
    ("Last hour", timedelta(hours=1)),
    ("Last 24 hours", timedelta(days=1)),
    ("Last 7 days", timedelta(days=7)),
    ("Last 30 days", timedelta(days=30)),
]
SNOOZE_CHOICES: list[tuple[str, timedelta | None]] = [
    ("15 minutes", timedelta(minutes=15)),
    ("1 hour", timedelta(hours=1)),
    ("4 hours", timedelta(hours=4)),
    ("Until tomorrow 08:00", None),
]


# The widest text each column usually shows: a column is never narrower than its
# header, its sample and its floor, so Value, Rule and Snoozed are not cut while
# the message column takes what is left.
COLUMN_SAMPLES = {C_SEVERITY: ("critical",), C_STATE: ("acknowledged",),
                  C_DEVICE: ("office-00003",),
                  C_RULE: ("Pump vibration critical", "Pump bearing worn out"),
                  C_VALUE: ("-1234.56", "33.4639"), C_RAISED: ("59 min",),
                  C_ACK: ("operator: on it",), C_SNOOZED: ("2026-12-31 23:59",)}
COLUMN_FLOORS = {C_SEVERITY: 90, C_STATE: 96, C_DEVICE: 110, C_RULE: 150, C_VALUE: 80,
                 C_RAISED: 72, C_ACK: 110, C_SNOOZED: 130}
HEADER_PADDING_PX = 16 + 22  # the sheet's section padding, the sort indicator
CELL_PADDING_PX = 16 + 18  # the cell's padding, the severity dot


def column_widths(table: QTableView) -> dict[int, int]:
    """Starting widths, in pixels, for every column but the stretching Message."""
    table.ensurePolished()  # the style sheet's font, not the default one
    header_fm = table.horizontalHeader().fontMetrics()
    cell_fm = table.fontMetrics()
    widths = {}
    for col, floor in COLUMN_FLOORS.items():
        header = header_fm.horizontalAdvance(COLUMNS[col]) + HEADER_PADDING_PX
        sample = max(cell_fm.horizontalAdvance(text) for text in COLUMN_SAMPLES[col]) \
            + CELL_PADDING_PX
        widths[col] = max(floor, header, sample)
    return widths


@dataclass
class Snapshot:
    alerts: list[Alert]
    open_counts: dict[Severity, int]
    active: dict[Severity, int]  # needing attention
    rule_names: dict[str, str]


def tomorrow_morning(now: datetime | None = None) -> datetime:
    local = (now or datetime.now(UTC)).astimezone()
    return datetime.combine(local.date() + timedelta(days=1), time(8, 0),
                            tzinfo=local.tzinfo).astimezone(UTC)


def snooze_until(choice: timedelta | None, now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return tomorrow_morning(now) if choice is None else now + choice


def load_counts(backend: Backend) -> tuple[dict[Severity, int], dict[Severity, int]]:
    """(open alerts by severity, alerts needing attention by severity): the
    header shows the second, as the badge and the status bar do."""
    open_counts = backend.alerts.counts_by_severity(open_only=True)
    return open_counts, load_attention_counts(backend.alerts)


class CommentDialog(QDialog):
    """Asks for the comment of an acknowledgement or resolution (may stay empty)."""

    submitted = Signal(str)

    def __init__(self, title: str, prompt: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setObjectName("AlertCommentDialog")
        self.prompt = QLabel(prompt)
        self.prompt.setWordWrap(True)
        self.comment = QPlainTextEdit()
        self.comment.setPlaceholderText("Comment (optional): what you found or did")
        self.comment.setMinimumSize(380, 90)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(title.rstrip("…"))
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.prompt)
        layout.addWidget(self.comment)
        layout.addWidget(self.buttons)

    def accept(self) -> None:
        self.submitted.emit(self.comment.toPlainText().strip())
        super().accept()


class SeverityStrip(QWidget):
    """"● 2 critical ● 5 warning ● 1 info" with the colours of the table."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(14)
        self.labels: dict[Severity, QLabel] = {}
        caption = QLabel("Needs attention:")
        caption.setProperty("role", "secondary")
        caption.setToolTip(ATTENTION_TIP)
        layout.addWidget(caption)
        for severity in SEVERITY_ORDER:
            label = QLabel()
            label.setObjectName(f"count-{severity.value}")
            label.setToolTip(f"{severity.value.capitalize()} alerts that need attention: "
                             "active and not snoozed")
            self.labels[severity] = label
            layout.addWidget(label)
        self.open_label = QLabel()
        self.open_label.setProperty("role", "secondary")
        self.open_label.setToolTip("Open alerts: active or acknowledged, snoozed or not")
        layout.addWidget(self.open_label)
        self.set_counts({})

    def set_counts(self, counts: dict[Severity, int],
                   open_counts: dict[Severity, int] | None = None) -> None:
        """``counts``: alerts needing attention; ``open_counts``: all open ones."""
        for severity, label in self.labels.items():
            n = counts.get(severity, 0)
            colour = SEVERITY_COLOURS[severity] if n else current_colors().disabled
            label.setText(f"<span style='color:{colour}; font-size:13pt'>●</span> "
                          f"<b>{n}</b> {severity.value}")
        total = sum((open_counts or {}).values())
        self.open_label.setText(f"· {plural(total, 'open alert')}" if open_counts else "")

    def counts(self) -> dict[Severity, int]:
        out = {}
        for severity, label in self.labels.items():
            text = label.text().split("<b>")[1].split("</b>")[0]
            out[severity] = int(text)
        return out


class AlertTableView(QTableView):
    """Runs ``key_actions[key]`` for unmodified letter keys (A, R, S)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key_actions: dict[Qt.Key, Callable[[], Any]] = {}

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and self._action_for(event):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        action = self._action_for(event)
        if action is not None:
            action()
            event.accept()
            return
        super().keyPressEvent(event)

    def _action_for(self, event: Any) -> Callable[[], Any] | None:
        if event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            return None
        try:
            return self.key_actions.get(Qt.Key(event.key()))
        except ValueError:
            return None


class AlertsPage(QWidget):
    """``actions_done`` fires with the per-alert results after every action."""

    actions_done = Signal(list)
    loaded = Signal()

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("AlertsPage")
        self.context = context
        self.backend: Backend | None = None
        self.actions: AlertActions | None = None
        self.live: LiveEvents | None = None
        self._background = BackgroundCall(self)
        self._loading = False
        self._reload_again = False
        self._busy = 0
        self.active_count = 0
        self.comment_dialog: CommentDialog | None = None
        self._build()
        self._background.start(lambda: context.backend, self._backend_ready, self._failed)

    # ------------------------------------------------------------ layout
    def _build(self) -> None:
        self.heading = QLabel("Alerts")
        self.heading.setProperty("role", "title")
        self.strip = SeverityStrip()
        self.rules_button = QPushButton("Rules…")
        self.rules_button.setToolTip("Add, edit and delete alert rules")
        self.rules_button.clicked.connect(self.open_rule_editor)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Reload from the backend (F5)")
        self.refresh_button.clicked.connect(self.refresh)

        self.state_filter = QComboBox()
        for text, states in STATE_CHOICES:
            self.state_filter.addItem(text, states)
        self.severity_filter = QComboBox()
        for text, severities in SEVERITY_CHOICES:
            self.severity_filter.addItem(text, severities)
        self.time_filter = QComboBox()
        for text, span in TIME_CHOICES:
            self.time_filter.addItem(text, span)
        self.text_filter = QLineEdit()
        self.text_filter.setPlaceholderText("Device, rule or message (Ctrl+F)")
        self.text_filter.setClearButtonEnabled(True)
        self.count_label = QLabel("")
        self.count_label.setProperty("role", "secondary")

        self.ack_button = QPushButton("Acknowledge…")
        self.ack_button.setToolTip("Acknowledge the selected alerts with a comment (A)")
        self.ack_button.clicked.connect(lambda: self.acknowledge_selected())
        self.resolve_button = QPushButton("Resolve…")
        self.resolve_button.setToolTip("Resolve the selected alerts with a comment (R)")
        self.resolve_button.clicked.connect(lambda: self.resolve_selected())
        self.snooze_button = QPushButton("Snooze")
        self.snooze_button.setToolTip("Silence the selected alerts for a while (S)")
        self.snooze_menu = QMenu(self.snooze_button)
        for text, span in SNOOZE_CHOICES:
            action = self.snooze_menu.addAction(text)
            action.triggered.connect(partial(self._snooze_choice, span))
        self.snooze_button.setMenu(self.snooze_menu)
        self.selection_label = QLabel("")
        self.selection_label.setProperty("role", "secondary")

        self.message = QLabel("")
        self.message.setObjectName("AlertMessages")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setVisible(False)
        self.status_label = self.message  # the name RecordPage-based pages use

        self.model = AlertTableModel(self)
        self.model.secondary_colour = self.model.secondary_colour.__class__(
            current_colors().secondary)
        self.table = AlertTableView()
        self.table.setObjectName("AlertTable")
        self.table.setModel(self.model)
        configure_row_table(self.table)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(C_MESSAGE, QHeaderView.ResizeMode.Stretch)
        for col, width in column_widths(self.table).items():
            self.table.setColumnWidth(col, width)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)

        self.detail = AlertDetailPanel()
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)

        top = QHBoxLayout()
        top.addWidget(self.heading)
        top.addSpacing(18)
        top.addWidget(self.strip)
        top.addStretch(1)
        top.addWidget(self.rules_button)
        top.addWidget(self.refresh_button)
        filters = QHBoxLayout()
        filters.addWidget(self.state_filter)
        filters.addWidget(self.severity_filter)
        filters.addWidget(self.time_filter)
        filters.addWidget(self.text_filter, 1)
        filters.addWidget(self.count_label)
        actions = QHBoxLayout()
        actions.addWidget(self.ack_button)
        actions.addWidget(self.resolve_button)
        actions.addWidget(self.snooze_button)
        actions.addSpacing(8)
        actions.addWidget(self.selection_label)
        actions.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.addLayout(top)
        layout.addLayout(filters)
        layout.addLayout(actions)
        layout.addWidget(self.message)
        layout.addWidget(self.splitter, 1)

        self.state_filter.currentIndexChanged.connect(self._filters_changed)
        self.severity_filter.currentIndexChanged.connect(self._filters_changed)
        self.time_filter.currentIndexChanged.connect(self._filters_changed)
        self._text_timer = QTimer(self, singleShot=True, interval=250)
        self._text_timer.timeout.connect(self._filters_changed)
        self.text_filter.textChanged.connect(lambda _t: self._text_timer.start())

        # Plain letters go through the table's key handler: item views claim
        # printable keys for keyboard search before any QShortcut sees them.
        self.table.key_actions = {
            Qt.Key.Key_A: lambda: self.acknowledge_selected(),
            Qt.Key.Key_R: lambda: self.resolve_selected(),
            Qt.Key.Key_S: self._popup_snooze,
        }
        select_all = QShortcut(QKeySequence.StandardKey.SelectAll, self.table,
                               self.table.selectAll)
        select_all.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        QShortcut(QKeySequence(QKeySequence.StandardKey.Refresh), self, self.refresh)
        QShortcut(QKeySequence(QKeySequence.StandardKey.Find), self, self.text_filter.setFocus)

        self._counts_timer = QTimer(self, singleShot=True, interval=COUNTS_DELAY_MS)
        self._counts_timer.timeout.connect(self._reload_counts)
        self._poll_timer = QTimer(self, interval=POLL_MS)
        self._poll_timer.timeout.connect(self._poll)
        self._clock = QTimer(self, interval=30_000)
        self._clock.timeout.connect(self.model.refresh_times)
        self._clock.start()
        self._update_buttons()

    # ------------------------------------------------------------ loading
    def _backend_ready(self, backend: Backend) -> None:
        self.backend = backend
        self.actions = AlertActions(backend, self.context.actor)
        self.detail.set_backend(backend)
        self.rules_button.setEnabled(backend.rules is not None)
        self.layout().insertWidget(3, DefaultRulesBanner(self.context, backend, self.refresh))
        if backend.rules is None:
            self.rules_button.setToolTip("This backend does not store alert rules")
        if backend.live is not None:
            # ALERT: what this process's hub changed, row by row; CHANGES: the
            # store changed elsewhere (CLI, another console, a remote hub).
            self.live = LiveEvents(backend.live, {EventKind.ALERT, EventKind.CHANGES}, self)
            self.live.batch.connect(self.apply_events)
        else:
            self._poll_timer.start()
        self.refresh()

    def _failed(self, exc: BaseException) -> None:
        self._loading = False
        self.refresh_button.setEnabled(True)
        self.show_message(f"Could not load alerts: {exc}", error=True)

    def current_filter(self) -> AlertFilter:
        span = self.time_filter.currentData()
        return AlertFilter(
            states=self.state_filter.currentData(),
            severities=self.severity_filter.currentData(),
            text=self.text_filter.text().strip(),
            since=(datetime.now(UTC) - span) if span else None,
            rule_names=self.model.rule_names,
        )

    def _query(self, f: AlertFilter) -> AlertQuery:
        return AlertQuery(states=f.states, severities=f.severities, since=f.since,
                          limit=None if f.text else LOAD_LIMIT)

    def refresh(self) -> None:
        if self.backend is None:
            return
        if self._loading:
            self._reload_again = True
            return
        self._loading = True
        self.refresh_button.setEnabled(False)
        backend, query = self.backend, self._query(self.current_filter())

        def load() -> Snapshot:
            alerts = backend.alerts.list(query)
            open_counts, active = load_counts(backend)
            names: dict[str, str] = {}
            if backend.rules is not None:
                names = {r.rule_id: r.name for r in backend.rules.list()}
            return Snapshot(alerts, open_counts, active, names)

        self._background.start(load, self._loaded, self._failed)

    def _loaded(self, snap: Snapshot) -> None:
        self._loading = False
        self.refresh_button.setEnabled(True)
        self.model.rule_names = snap.rule_names
        selected = {a.alert_id for a in self.selected_alerts()}
        self.model.filter = self.current_filter()
        self.model.set_alerts(snap.alerts)
        self._restore_selection(selected)
        self._set_counts(snap.open_counts, snap.active)
        self._update_count_label()
        self.loaded.emit()
        if self._reload_again:
            self._reload_again = False
            self.refresh()

    def _filters_changed(self, *_: Any) -> None:
        self.refresh()

    def _poll(self) -> None:
        """No live feed: fetch the current query and merge it row by row."""
        if self.backend is None or self._loading:
            return
        backend, f = self.backend, self.current_filter()
        self._background.start(lambda: backend.alerts.list(self._query(f)),
                               self._merge, lambda exc: log.debug("poll failed: %s", exc))
        self._counts_timer.start()

    def _merge(self, alerts: list[Alert]) -> None:
        fresh = {a.alert_id for a in alerts}
        selected = self.current_alert()
        for alert in alerts:
            self.model.upsert(alert)
            if (selected is not None and alert.alert_id == selected.alert_id
                    and alert.version != selected.version):
                self.detail.show_alert(alert)
        for alert in self.model.alerts():
            if alert.alert_id not in fresh:
                self.model.remove(alert.alert_id)
        self._update_count_label()
        self._update_buttons()

    # ------------------------------------------------------------ live
    def apply_events(self, events: list[FleetEvent]) -> None:
        changed = False
        selected = self.current_alert()
        topics = {e.data.get("topic") for e in events if e.kind == EventKind.CHANGES}
        if changes.RULES in topics:
            self.refresh()  # rule names in the table and the filter
        elif changes.ALERTS in topics:
            self._poll()
        for event in events:
            if event.kind != EventKind.ALERT:
                continue
            alert = event.data.get("alert")
            if isinstance(alert, Alert):
                changed = bool(self.model.upsert(alert)) or changed
                if (selected is not None and alert.alert_id == selected.alert_id
                        and alert.version > selected.version):
                    self.detail.show_alert(alert)
        if changed:
            self._update_count_label()
        self._counts_timer.start()

    def _reload_counts(self) -> None:
        if self.backend is None:
            return
        backend = self.backend
        self._background.start(lambda: load_counts(backend),
                               lambda result: self._set_counts(*result),
                               lambda exc: log.debug("counts failed: %s", exc))

    def _set_counts(self, open_counts: dict[Severity, int],
                    attention: dict[Severity, int]) -> None:
        self.strip.set_counts(attention, open_counts)
        active = sum(attention.values())
        self.active_count = active  # needs attention (core.services.fleet_health)
        set_badge(self, PAGE_ID, str(active) if active else "")

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        set_badge(self, PAGE_ID, str(self.active_count) if self.active_count else "")

    # ------------------------------------------------------------ selection
    def selected_alerts(self) -> list[Alert]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.model.alert_at(r) for r in rows if r < self.model.rowCount()]

    def current_alert(self) -> Alert | None:
        selected = self.selected_alerts()
        return selected[0] if len(selected) == 1 else None

    def select_alerts(self, alert_ids: set[str] | list[str]) -> None:
        self._restore_selection(set(alert_ids), clear=True)

    def _restore_selection(self, alert_ids: set[str], *, clear: bool = True) -> None:
        sm = self.table.selectionModel()
        if clear:
            sm.clearSelection()
        flags = (QItemSelectionModel.SelectionFlag.Select
                 | QItemSelectionModel.SelectionFlag.Rows)
        first = None
        for alert_id in alert_ids:
            row = self.model.row_of(alert_id)
            if row is not None:
                sm.select(self.model.index(row, 0), flags)
                first = row if first is None else min(first, row)
        if first is not None:
            self.table.scrollTo(self.model.index(first, 0))

    def _selection_changed(self, *_: Any) -> None:
        self._update_buttons()
        selected = self.selected_alerts()
        if len(selected) == 1:
            self.detail.show_alert(selected[0])
        elif selected:
            self.detail.clear(f"{plural(len(selected), 'alert')} selected")
        else:
            self.detail.clear()

    def _update_buttons(self) -> None:
        selected = self.selected_alerts()
        idle = self._busy == 0
        self.ack_button.setEnabled(idle and any(a.state is AlertState.ACTIVE for a in selected))
        self.resolve_button.setEnabled(idle and any(a.is_open for a in selected))
        self.snooze_button.setEnabled(idle and any(a.is_open for a in selected))
        self.selection_label.setText(f"{len(selected)} selected" if len(selected) > 1 else "")

    def _update_count_label(self) -> None:
        n = self.model.rowCount()
        more = " (newest shown)" if n >= LOAD_LIMIT else ""
        self.count_label.setText(f"{n} alert{'s' if n != 1 else ''}{more}")

    # ------------------------------------------------------------ actions
    def acknowledge_selected(self, comment: str | None = None) -> None:
        targets = [a for a in self.selected_alerts() if a.is_open]
        if not targets:
            return
        if comment is None:
            self._ask_comment("Acknowledge…", targets,
                              lambda text: self._run("acknowledge", targets, comment=text))
        else:
            self._run("acknowledge", targets, comment=comment)

    def resolve_selected(self, comment: str | None = None) -> None:
        targets = [a for a in self.selected_alerts() if a.is_open]
        if not targets:
            return
        if comment is None:
            self._ask_comment("Resolve…", targets,
                              lambda text: self._run("resolve", targets, comment=text))
        else:
            self._run("resolve", targets, comment=comment)

    def snooze_selected(self, until: datetime) -> None:
        targets = [a for a in self.selected_alerts() if a.is_open]
        if targets:
            self._run("snooze", targets, until=until)

    def _snooze_choice(self, span: timedelta | None) -> None:
        self.snooze_selected(snooze_until(span))

    def _popup_snooze(self) -> None:
        if self.snooze_button.isEnabled():
            self.snooze_button.showMenu()

    def _ask_comment(self, title: str, targets: list[Alert],
                     then: Callable[[str], None]) -> None:
        what = (f"{targets[0].device_id}: {targets[0].message}" if len(targets) == 1
                else plural(len(targets), "alert"))
        dialog = CommentDialog(title, f"{title.rstrip('…')} {what}", self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.submitted.connect(then)
        self.comment_dialog = dialog
        dialog.open()

    def _run(self, action: str, targets: list[Alert], **kwargs: Any) -> None:
        if self.actions is None:
            return
        actions = self.actions
        self._busy += 1
        self._update_buttons()
        verb = {"acknowledge": "Acknowledging", "resolve": "Resolving",
                "snooze": "Snoozing"}[action]
        self.show_message(f"{verb} {len(targets)} alert{'s' if len(targets) != 1 else ''}…")
        self._background.start(lambda: actions.run_many(targets, action, **kwargs),
                               self._action_done, self._action_failed)

    def _action_failed(self, exc: BaseException) -> None:
        self._busy = max(0, self._busy - 1)
        self._update_buttons()
        self.show_message(f"The action failed: {exc}", error=True)

    def _action_done(self, results: list[ActionResult]) -> None:
        self._busy = max(0, self._busy - 1)
        for result in results:
            if result.alert is not None:
                self.model.upsert(result.alert)
        self._update_buttons()
        self._update_count_label()
        self._counts_timer.start()
        current = self.current_alert()
        if current is not None:
            self.detail.show_alert(current)
        self.show_message(summarise(results), error=any(not r.ok for r in results))
        self.actions_done.emit(results)

    def show_message(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setProperty("role", "error" if error else "success")
        self.message.style().unpolish(self.message)
        self.message.style().polish(self.message)
        self.message.setVisible(bool(text))

    # ------------------------------------------------------------ rules
    def open_rule_editor(self) -> QDialog | None:
        if self.backend is None or self.backend.rules is None:
            return None
        from .rule_editor import RuleEditorDialog, rule_types

        dialog = RuleEditorDialog(self.backend, self.context.actor, self,
                                  types=rule_types(self.context.plugins))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda _r: self.refresh())
        self.rule_editor = dialog
        dialog.open()
        return dialog


PAST = {"acknowledge": "Acknowledged", "resolve": "Resolved", "snooze": "Snoozed"}


def summarise(results: list[ActionResult]) -> str:
    ok = [r for r in results if r.ok]
    failed = [r for r in results if not r.ok]
    lines = []
    if ok:
        verb = PAST.get(ok[0].action, ok[0].action)
        lines.append(f"{verb} {len(ok)} alert{'s' if len(ok) != 1 else ''}.")
    for r in failed:
        device = r.alert.device_id if r.alert is not None else r.alert_id[:8]
        lines.append(f"{device}: {r.message}")
    if len(lines) > 8:
        lines = [*lines[:7], f"… and {len(lines) - 7} more"]
    return "\n".join(lines)


def build_alerts_page(context: AppContext) -> AlertsPage:
    return AlertsPage(context)
