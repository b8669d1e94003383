"""Run blocking calls (store queries, boto3) off the GUI thread.

Results come back through a queued signal, so the callback always runs on
the GUI thread and the window keeps painting while a slow database answers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from console.widgets.signals import safe_emit


class _Signals(QObject):
    """Lives in the GUI thread; emitting from the worker queues delivery there."""

    done = Signal(object)
    failed = Signal(object)


_IN_FLIGHT: set[_Signals] = set()


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], Any], signals: _Signals) -> None:
        super().__init__()
        self._fn = fn
        self._signals = signals

    def run(self) -> None:
        try:
            result = self._fn()
        except Exception as exc:  # noqa: BLE001 - reported to the page, never lost
            self._deliver(self._signals.failed, exc)
        else:
            self._deliver(self._signals.done, result)

    @staticmethod
    def _deliver(signal: object, value: object) -> None:
        # RuntimeError: the application is shutting down and nobody is listening
        with contextlib.suppress(RuntimeError):
            safe_emit(signal, value)


class BackgroundCall(QObject):
    """Starts jobs on behalf of a page.

    Each job's signal object has no Qt parent and is kept alive by the job
    itself, so a page closed while its query runs does not crash the worker
    ("Signal source has been deleted"). Callbacks are usually closures, which
    Qt cannot tie to a receiver, so each one first checks that this object
    (a child of the page) still exists: a late result for a deleted page is
    dropped instead of touching its deleted widgets.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)

    def start(
        self,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        signals = _Signals()
        signals.done.connect(self._guard(on_done))
        signals.failed.connect(self._guard(on_error))
        # Kept alive until its result has been delivered on the GUI thread.
        _IN_FLIGHT.add(signals)
        signals.done.connect(lambda _result: _IN_FLIGHT.discard(signals))
        signals.failed.connect(lambda _exc: _IN_FLIGHT.discard(signals))
        QThreadPool.globalInstance().start(_Job(fn, signals))

    def _guard(self, callback: Callable[[Any], None]) -> Callable[[Any], None]:
        def deliver(value: Any) -> None:
            if shiboken6.isValid(self):
                callback(value)

        return deliver
