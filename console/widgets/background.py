"""Run blocking calls (store queries, boto3) off the GUI thread.

Results come back through a queued signal, so the callback always runs on
the GUI thread and the window keeps painting while a slow database answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class _Signals(QObject):
    done = Signal(object)
    failed = Signal(object)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], Any], signals: _Signals) -> None:
        super().__init__()
        self._fn = fn
        self._signals = signals

    def run(self) -> None:
        try:
            result = self._fn()
        except Exception as exc:  # noqa: BLE001 - isolation is the point here
            self._signals.failed.emit(exc)
        else:
            self._signals.done.emit(result)


class BackgroundCall(QObject):
    """Owns its signal object so a page closed mid-query does not crash the app."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._signals = _Signals(self)

    def start(
        self,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        signals = _Signals(self)
        signals.done.connect(on_done)
        signals.failed.connect(on_error)
        QThreadPool.globalInstance().start(_Job(fn, signals))
