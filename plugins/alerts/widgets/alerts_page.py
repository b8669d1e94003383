"""The alert queue page: filters, counts, live rows, actions and details.

Data: the page loads through the alerts use cases (``context.api.alerts``:
organization scope, role checks and audit entries live there) on a worker
thread, then follows AlertChanged events from the backend's live feed
(coalesced on the GUI thread) and updates rows in place. Without a live feed
it polls every few seconds and merges the result the same way, so no reset
happens per change. Loads are "latest wins": a newer filter supersedes a
load still running.
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
from console.widgets.column_room import HEADER_PADDING_PX, ColumnRoom
from console.widgets.tables import configure_row_table
from core.context import AppContext
from core.model import Alert, AlertState, Severity
from core.model.events import AlertChanged, DataChanged, FleetEvent
from core.ports import changes
from core.ports.fleet_api.alerts import ActionResult, AlertFeatures, AlertsApi
from core.services.fleet_view import MAX_PAGE
from core.text import plural

from ._common import SEVERITY_COLOURS, SEVERITY_ORDER, LiveEvents, alert_actions, set_badge
from .actions import PRESENT, run_action, summarise
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
MESSAGE_MIN_PX = 240  # "temperature above 70 °C for 5 min", whole
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


def _session(context: AppContext) -> tuple[AlertsApi, AlertFeatures]:
    """Blocking (the first use builds the backend): runs on a worker thread."""
    alerts = context.api.alerts
    return alerts, alerts.features()


def load_alerts(alerts: AlertsApi, f: AlertFilter) -> list[Alert]:
    """The filter's alerts, newest first, page after page: up to LOAD_LIMIT,
    or all of them when the text filter (applied here, on the rows) is set."""
    found: list[Alert] = []
    token = ""
    while f.text or len(found) < LOAD_LIMIT:
        page = alerts.list_alerts(states=f.states, severities=f.severities, since=f.since,
                                  limit=MAX_PAGE, next_token=token)
        found.extend(page.items)
        token = page.next
        if not token:
            break
    return found if f.text else found[:LOAD_LIMIT]


def _button(text: str, tip: str, clicked: Callable[[], Any]) -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tip)
    button.clicked.connect(lambda _checked=False: clicked())
    return button


def _choices(choices: list[tuple[str, Any]]) -> QComboBox:
    combo = QComboBox()
    for text, data in choices:
        combo.addItem(text, data)
    return combo


def _secondary_label() -> QLabel:
    label = QLabel("")
    label.setProperty("role", "secondary")
    return label


def _row(*items: QWidget | int | None) -> QHBoxLayout:
    """Widgets left to right; an int is spacing, None a stretch."""
    row = QHBoxLayout()
    for item in items:
        if item is None:
            row.addStretch(1)
        elif isinstance(item, int):
            row.addSpacing(item)
        else:
            row.addWidget(item)
    return row


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


def _alert_table(model: AlertTableModel) -> AlertTableView:
    """Fixed-height rows, Message takes the width the other columns leave."""
    table = AlertTableView()
    table.setObjectName("AlertTable")
    table.setModel(model)
    configure_row_table(table)
    table.setWordWrap(False)
    header = table.horizontalHeader()
    header.setStretchLastSection(False)
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setSectionResizeMode(C_MESSAGE, QHeaderView.ResizeMode.Stretch)
    widths = column_widths(table)
    for col, width in widths.items():
        table.setColumnWidth(col, width)
    # in a narrow window the empty Snoozed and Acknowledged columns give way
    # before the message does ("acknowledged" stays whole)
    ColumnRoom(table, C_MESSAGE, MESSAGE_MIN_PX, (C_SNOOZED, C_ACK, C_RULE, C_STATE),
               floors={C_STATE: widths[C_STATE]})
    return table


class AlertsPage(QWidget):
    """``actions_done`` fires with the per-alert results after every action."""

    actions_done = Signal(list)
    loaded = Signal()

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("AlertsPage")
        self.context = context
        self.alerts: AlertsApi | None = None
        self.features = AlertFeatures(rules=False, quarantine=False, audited=False)
        self.live: LiveEvents | None = None
        self._background = BackgroundCall(self)
        self._busy = 0
        self.active_count = 0
        self.comment_dialog: CommentDialog | None = None
        self._build()
        self._background.start(lambda: _session(context), self._api_ready, self._failed)

    # ------------------------------------------------------------ layout
    def _build(self) -> None:
        self._layout = layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.addLayout(self._build_header())
        layout.addLayout(self._build_filters())
        layout.addLayout(self._build_action_bar())
        layout.addWidget(self._build_message())
        layout.addWidget(self._build_table_and_detail(), 1)
        self._build_shortcuts()
        self._build_timers()
        self._update_buttons()

    def _build_header(self) -> QHBoxLayout:
        """Title, the needs-attention strip, Rules… and Refresh."""
        self.heading = QLabel("Alerts")
        self.heading.setProperty("role", "title")
        self.strip = SeverityStrip()
        self.rules_button = _button("Rules…", "Add, edit and delete alert rules",
                                    self.open_rule_editor)
        self.refresh_button = _button("Refresh", "Reload from the backend (F5)", self.refresh)
        return _row(self.heading, 18, self.strip, None, self.rules_button,
                    self.refresh_button)

    def _build_filters(self) -> QHBoxLayout:
        """State, severity, time and text; the text waits for a pause in typing."""
        self.state_filter = _choices(STATE_CHOICES)
        self.severity_filter = _choices(SEVERITY_CHOICES)
        self.time_filter = _choices(TIME_CHOICES)
        self.text_filter = QLineEdit()
        self.text_filter.setPlaceholderText("Device, rule or message (Ctrl+F)")
        self.text_filter.setClearButtonEnabled(True)
        self.count_label = _secondary_label()
        for combo in (self.state_filter, self.severity_filter, self.time_filter):
            combo.currentIndexChanged.connect(self._filters_changed)
        self._text_timer = QTimer(self, singleShot=True, interval=250)
        self._text_timer.timeout.connect(self._filters_changed)
        self.text_filter.textChanged.connect(lambda _t: self._text_timer.start())
        row = _row(self.state_filter, self.severity_filter, self.time_filter)
        row.addWidget(self.text_filter, 1)
        row.addWidget(self.count_label)
        return row

    def _build_action_bar(self) -> QHBoxLayout:
        """Acknowledge…, Resolve…, Snooze (a menu of durations) and the selection count."""
        self.ack_button = _button("Acknowledge…",
                                  "Acknowledge the selected alerts with a comment (A)",
                                  lambda: self.acknowledge_selected())
        self.resolve_button = _button("Resolve…", "Resolve the selected alerts with a comment (R)",
                                      lambda: self.resolve_selected())
        self.snooze_button = QPushButton("Snooze")
        self.snooze_button.setToolTip("Silence the selected alerts for a while (S)")
        self.snooze_menu = QMenu(self.snooze_button)
        for text, span in SNOOZE_CHOICES:
            action = self.snooze_menu.addAction(text)
            action.triggered.connect(partial(self._snooze_choice, span))
        self.snooze_button.setMenu(self.snooze_menu)
        self.selection_label = _secondary_label()
        return _row(self.ack_button, self.resolve_button, self.snooze_button, 8,
                    self.selection_label, None)

    def _build_message(self) -> QLabel:
        """Outcome of the last action or load, hidden while empty."""
        self.message = QLabel("")
        self.message.setObjectName("AlertMessages")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setVisible(False)
        self.status_label = self.message  # the name other pages' status lines use
        return self.message

    def _build_table_and_detail(self) -> QSplitter:
        self.model = AlertTableModel(self)
        self.model.secondary_colour = self.model.secondary_colour.__class__(
            current_colors().secondary)
        self.table = _alert_table(self.model)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.detail = AlertDetailPanel()
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)
        return self.splitter

    def _build_shortcuts(self) -> None:
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

    def _build_timers(self) -> None:
        self._counts_timer = QTimer(self, singleShot=True, interval=COUNTS_DELAY_MS)
        self._counts_timer.timeout.connect(self._reload_counts)
        self._poll_timer = QTimer(self, interval=POLL_MS)
        self._poll_timer.timeout.connect(self._poll)
        self._clock = QTimer(self, interval=30_000)
        self._clock.timeout.connect(self.model.refresh_times)
        self._clock.start()

    # ------------------------------------------------------------ loading
    def _api_ready(self, session: tuple[AlertsApi, AlertFeatures]) -> None:
        self.alerts, self.features = session
        self.detail.set_api(self.alerts)
        self.rules_button.setEnabled(self.features.rules)
        if not self.features.rules:
            self.rules_button.setToolTip("This backend does not store alert rules")
        self._layout.insertWidget(3, DefaultRulesBanner(self.context, self.refresh))
        live = self.context.backend.live  # live events stay on the backend's feed for now
        if live is not None:
            # AlertChanged: what this process's hub changed, row by row; DataChanged:
            # the store changed elsewhere (CLI, another console, a remote hub).
            self.live = LiveEvents(live, {AlertChanged, DataChanged}, self)
            self.live.batch.connect(self.apply_events)
        else:
            self._poll_timer.start()
        self.refresh()

    def _failed(self, exc: BaseException) -> None:
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

    def refresh(self) -> None:
        """Load the filtered alerts, the counts and the rule names; a newer
        refresh (a filter changed again) supersedes one still running."""
        if self.alerts is None:
            return
        self.refresh_button.setEnabled(False)
        alerts, f, with_rules = self.alerts, self.current_filter(), self.features.rules
        self._background.cancel("poll")  # the full load answers for it

        def load() -> Snapshot:
            counts = alerts.counts()
            names = {r.rule_id: r.name for r in alerts.list_rules()} if with_rules else {}
            return Snapshot(load_alerts(alerts, f), counts.open, counts.attention, names)

        self._background.start(load, self._loaded, self._failed, key="load")

    def _loaded(self, snap: Snapshot) -> None:
        self.refresh_button.setEnabled(True)
        self.model.rule_names = snap.rule_names
        selected = {a.alert_id for a in self.selected_alerts()}
        self.model.filter = self.current_filter()
        self.model.set_alerts(snap.alerts)
        self._restore_selection(selected)
        self._set_counts(snap.open_counts, snap.active)
        self._update_count_label()
        self.loaded.emit()

    def _filters_changed(self, *_: Any) -> None:
        self.refresh()

    def _poll(self) -> None:
        """No live feed (or another process changed alerts): fetch the current
        query and merge it row by row. A full load under way answers instead."""
        if self.alerts is None or not self.refresh_button.isEnabled():
            return
        alerts, f = self.alerts, self.current_filter()
        self._background.start(lambda: load_alerts(alerts, f), self._merge,
                               lambda exc: log.debug("poll failed: %s", exc), key="poll")
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
        topics = {e.topic for e in events if isinstance(e, DataChanged)}
        if changes.RULES in topics:
            self.refresh()  # rule names in the table and the filter
        elif changes.ALERTS in topics:
            self._poll()
        for event in events:
            if not isinstance(event, AlertChanged):
                continue
            alert = event.alert
            changed = bool(self.model.upsert(alert)) or changed
            if (selected is not None and alert.alert_id == selected.alert_id
                    and alert.version > selected.version):
                self.detail.show_alert(alert)
        if changed:
            self._update_count_label()
        self._counts_timer.start()

    def _reload_counts(self) -> None:
        if self.alerts is None:
            return
        alerts = self.alerts
        self._background.start(alerts.counts,
                               lambda c: self._set_counts(c.open, c.attention),
                               lambda exc: log.debug("counts failed: %s", exc), key="counts")

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

    def _run(self, action: str, targets: list[Alert], *, comment: str = "",
             until: datetime | None = None) -> None:
        if self.alerts is None:
            return
        alerts, ids = self.alerts, [a.alert_id for a in targets]
        self._busy += 1
        self._update_buttons()
        self.show_message(f"{PRESENT[action]} {plural(len(targets), 'alert')}…")
        self._background.start(
            lambda: run_action(alerts, action, ids, comment=comment, until=until),
            partial(self._action_done, action), self._action_failed)

    def _action_failed(self, exc: BaseException) -> None:
        self._busy = max(0, self._busy - 1)
        self._update_buttons()
        self.show_message(f"The action failed: {exc}", error=True)

    def _action_done(self, action: str, results: list[ActionResult]) -> None:
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
        self.show_message(summarise(action, results), error=any(not r.ok for r in results))
        self.actions_done.emit(results)
        alert_actions().done.emit()  # the status bar and badge recount now

    def show_message(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setProperty("role", "error" if error else "success")
        self.message.style().unpolish(self.message)
        self.message.style().polish(self.message)
        self.message.setVisible(bool(text))

    # ------------------------------------------------------------ rules
    def open_rule_editor(self) -> QDialog | None:
        if self.alerts is None or not self.features.rules:
            return None
        from .rule_editor import RuleEditorDialog, rule_types

        dialog = RuleEditorDialog(self.context.api, self,
                                  types=rule_types(self.context.plugins))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda _r: self.refresh())
        self.rule_editor = dialog
        dialog.open()
        return dialog


def build_alerts_page(context: AppContext) -> AlertsPage:
    return AlertsPage(context)
