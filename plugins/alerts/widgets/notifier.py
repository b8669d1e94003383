"""Desktop notification of new critical alerts: a tray balloon where the
desktop has a system tray, an in-window toast otherwise; rate-limited so a
storm of alerts produces one "3 new critical alerts" rather than a flood."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QFrame, QLabel, QSystemTrayIcon, QVBoxLayout, QWidget

from core.model import Alert, AlertState, Severity
from core.model.events import AlertChanged, FleetEvent
from core.ports.navigation import Navigation, NoNavigation

MIN_INTERVAL_S = 5.0
TOAST_MS = 6000


class Toast(QFrame):
    """A small box in the bottom-right corner of a window that hides itself."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("AlertToast")
        self.setStyleSheet("#AlertToast { background: #7f1d1d; border-radius: 8px; }"
                           "#AlertToast QLabel { color: #ffffff; }")
        self.title = QLabel()
        self.title.setStyleSheet("font-weight: 600;")
        self.text = QLabel()
        self.text.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 10)
        layout.addWidget(self.title)
        layout.addWidget(self.text)
        self.setFixedWidth(320)
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self.hide)
        self.hide()

    def show_message(self, title: str, text: str, msecs: int = TOAST_MS) -> None:
        self.title.setText(title)
        self.text.setText(text)
        self.adjustSize()
        parent = self.parentWidget()
        if parent is not None:
            self.move(parent.width() - self.width() - 16, parent.height() - self.height() - 40)
        self.raise_()
        self.show()
        self._timer.start(msecs)

    def mousePressEvent(self, event: object) -> None:
        self.hide()


class CriticalNotifier(QObject):
    """Feed it AlertChanged events; ``notified(title, text)`` fires for each balloon/toast.

    Clicking a tray balloon opens the Alerts page through ``navigation`` (the
    context's, from the window)."""

    notified = Signal(str, str)

    def __init__(self, host: QWidget, *, navigation: Navigation | None = None,
                 min_interval_s: float = MIN_INTERVAL_S,
                 use_tray: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(host)
        self._host = host
        self.navigation: Navigation = navigation or NoNavigation()
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._last: float | None = None
        self._pending: list[Alert] = []
        self._notified: set[str] = set()
        self.tray: QSystemTrayIcon | None = None
        self.toast: Toast | None = None
        if use_tray is None:
            use_tray = QSystemTrayIcon.isSystemTrayAvailable()
        self.use_tray = use_tray
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self.flush)

    def feed(self, events: list[FleetEvent]) -> None:
        for event in events:
            if isinstance(event, AlertChanged):
                self.consider(event.alert)
        self._schedule()

    def consider(self, alert: Alert) -> None:
        if alert.state is not AlertState.ACTIVE:
            self._notified.discard(alert.alert_id)  # a later reopen notifies again
            self._pending = [a for a in self._pending if a.alert_id != alert.alert_id]
            return
        if alert.severity is not Severity.CRITICAL or alert.is_snoozed():
            return
        if alert.alert_id in self._notified:
            return
        self._notified.add(alert.alert_id)
        self._pending.append(alert)

    def _schedule(self) -> None:
        if not self._pending:
            return
        now = self._clock()
        wait = 0.0 if self._last is None else self._last + self.min_interval_s - now
        if wait <= 0:
            self.flush()
        elif not self._timer.isActive():
            self._timer.start(int(wait * 1000) + 1)

    def flush(self) -> None:
        if not self._pending:
            return
        alerts, self._pending = self._pending, []
        self._last = self._clock()
        if len(alerts) == 1:
            a = alerts[0]
            title = f"Critical alert on {a.device_id}"
            text = a.message
        else:
            title = f"{len(alerts)} new critical alerts"
            devices = sorted({a.device_id for a in alerts})
            text = ", ".join(devices[:4]) + (f" and {len(devices) - 4} more"
                                             if len(devices) > 4 else "")
        self._show(title, text)
        self.notified.emit(title, text)

    def _show(self, title: str, text: str) -> None:
        if self.use_tray:
            if self.tray is None:
                window = self._host.window()
                self.tray = QSystemTrayIcon(window.windowIcon(), self)
                self.tray.setToolTip("Smart IoT Fleet Console")
                self.tray.messageClicked.connect(self._activate_window)
                self.tray.show()
            self.tray.showMessage(title, text, QSystemTrayIcon.MessageIcon.Critical, 8000)
            return
        window = self._host.window()
        if self.toast is None or self.toast.parentWidget() is not window:
            self.toast = Toast(window)
        self.toast.show_message(title, text)

    def _activate_window(self) -> None:
        window = self._host.window()
        window.showNormal()
        window.raise_()
        window.activateWindow()
        self.navigation.open("alerts")


__all__ = ["CriticalNotifier", "Toast"]
