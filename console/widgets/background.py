"""Run blocking calls (store queries, boto3) off the GUI thread.

Results come back through a queued signal, so the callback always runs on
the GUI thread and the window keeps painting while a slow database answers.

Two things every page needs are built in, so pages do not hand-roll them:

* **Latest wins.** Calls started with the same ``key`` supersede each other:
  only the newest one's result (or error) is delivered. A person clicking
  through ten devices sees the tenth, never a slower answer for the third
  painted over it. A superseded call that has not started yet does not run.
* **An expired sign-in is the window's.** A call that fails with
  ``core.errors.SignInExpired`` is handed to the page as any error, and the
  window is asked to offer the sign-in dialog (``offer_sign_in``), so no page
  has to know about signing in; queued changes stay queued meanwhile.
* **Its own workers.** Jobs run on a pool of their own, sized for waiting
  rather than computing (see ``WORKERS``): nearly every job waits on a
  socket, and Qt's global pool has one thread a core, so on a two-core
  laptop two slow calls (a sandbox answering late, a store under load)
  would queue every other page's query behind them.
* **Owner gone, no callback.** Once the ``BackgroundCall`` (a child of the
  page) or the widget a bound-method callback belongs to is deleted, the
  result is dropped instead of touching deleted widgets.

Example::

    class DevicePanel(QWidget):
        def __init__(self, context: AppContext) -> None:
            super().__init__()
            self._context = context
            self._background = BackgroundCall(self)

        def show_device(self, device_id: str) -> None:
            self._background.start(
                lambda: self._context.api.devices.details(device_id),
                self._details_loaded,
                self._details_failed,
                key="details",  # a newer show_device() supersedes this one
            )

        def clear(self) -> None:
            self._background.cancel("details")  # an answer in flight is dropped

Without ``key`` every call is delivered (saves, deletes, one-off actions).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, Signal
from PySide6.QtWidgets import QWidget

from console.widgets.signals import safe_emit
from core.errors import SignInExpired


class _Signals(QObject):
    """Lives in the GUI thread; emitting from the worker queues delivery there."""

    done = Signal(object)
    failed = Signal(object)
    skipped = Signal()


_IN_FLIGHT: set[_Signals] = set()

#: Threads for page jobs. The jobs wait on the network or the database far
#: more than they compute, so this is how many slow answers may be awaited at
#: once before a quick one queues, not a CPU budget.
WORKERS = 8

_POOL: QThreadPool | None = None


def pool() -> QThreadPool:
    """The pool every ``BackgroundCall`` starts its jobs on (created on first use)."""
    global _POOL
    if _POOL is None:
        _POOL = QThreadPool()
        _POOL.setMaxThreadCount(max(WORKERS, 2 * QThread.idealThreadCount()))
        _POOL.setObjectName("background-calls")
    return _POOL


class _Ticket:
    """One started call; cancelled once superseded, cancelled or orphaned.

    Set on the GUI thread and read by the worker: a plain attribute is enough
    under the GIL, and a worker that reads it a moment late only computes a
    result that the GUI-thread check drops anyway.
    """

    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], Any], signals: _Signals, ticket: _Ticket) -> None:
        super().__init__()
        self._fn = fn
        self._signals = signals
        self._ticket = ticket

    def run(self) -> None:
        if self._ticket.cancelled:  # superseded while queued: do not spend a worker on it
            self._deliver(self._signals.skipped)
            return
        try:
            result = self._fn()
        except Exception as exc:  # noqa: BLE001 - reported to the page, never lost
            self._deliver(self._signals.failed, exc)
        else:
            self._deliver(self._signals.done, result)

    @staticmethod
    def _deliver(signal: object, *value: object) -> None:
        # RuntimeError: the application is shutting down and nobody is listening
        with contextlib.suppress(RuntimeError):
            safe_emit(signal, *value)


def _owner_of(callback: Callable[..., Any]) -> QObject | None:
    """The QObject a bound-method callback belongs to, if any."""
    owner = getattr(callback, "__self__", None)
    return owner if isinstance(owner, QObject) else None


class BackgroundCall(QObject):
    """Starts jobs on behalf of a page (see the module docstring for an example).

    Each job's signal object has no Qt parent and is kept alive by the job
    itself, so a page closed while its query runs does not crash the worker
    ("Signal source has been deleted"). Callbacks are usually closures, which
    Qt cannot tie to a receiver, so each one first checks that this object
    (a child of the page) still exists: a late result for a deleted page is
    dropped instead of touching its deleted widgets.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._latest: dict[str, _Ticket] = {}
        self._pending: set[_Ticket] = set()
        pending = self._pending  # the closure must not hold self (it is being destroyed)
        self.destroyed.connect(lambda *_: _cancel_all(pending))

    def start(
        self,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
        *,
        key: str | None = None,
    ) -> None:
        """Run ``fn`` on a worker; deliver its result to ``on_done`` or its
        exception to ``on_error`` on the GUI thread.

        With ``key``, this call supersedes any earlier one started with the
        same key: the earlier one's result and error are dropped.
        """
        ticket = _Ticket()
        if key is not None:
            previous = self._latest.get(key)
            if previous is not None:
                previous.cancelled = True
            self._latest[key] = ticket
        self._pending.add(ticket)

        signals = _Signals()
        signals.done.connect(self._guard(ticket, key, on_done))
        signals.failed.connect(self._guard(ticket, key, on_error, failure=True))
        # Kept alive until its result has been delivered on the GUI thread.
        _IN_FLIGHT.add(signals)

        pending = self._pending  # not self: it may be deleted by the time this runs

        def settled(*_: object) -> None:
            _IN_FLIGHT.discard(signals)
            pending.discard(ticket)

        signals.done.connect(settled)
        signals.failed.connect(settled)
        signals.skipped.connect(settled)
        pool().start(_Job(fn, signals, ticket))

    def cancel(self, key: str | None = None) -> None:
        """Drop the answer of the call started with ``key`` (every call if None)."""
        if key is None:
            _cancel_all(self._pending)
            self._latest.clear()
            return
        ticket = self._latest.pop(key, None)
        if ticket is not None:
            ticket.cancelled = True

    def is_running(self, key: str | None = None) -> bool:
        """Whether an answer is still awaited (for ``key``, or for any call)."""
        if key is None:
            return any(not t.cancelled for t in self._pending)
        ticket = self._latest.get(key)
        return ticket is not None and ticket in self._pending and not ticket.cancelled

    def _guard(
        self, ticket: _Ticket, key: str | None, callback: Callable[[Any], None],
        *, failure: bool = False,
    ) -> Callable[[Any], None]:
        owner = _owner_of(callback)

        def deliver(value: Any) -> None:
            if ticket.cancelled or not shiboken6.isValid(self):
                return
            if owner is not None and not shiboken6.isValid(owner):
                return
            if key is not None and self._latest.get(key) is ticket:
                del self._latest[key]
            self._pending.discard(ticket)
            ticket.cancelled = True  # delivered once; is_running() is now False
            callback(value)
            if failure and isinstance(value, SignInExpired) and shiboken6.isValid(self):
                _offer_sign_in(self, value)

        return deliver


def _offer_sign_in(call: QObject, error: SignInExpired) -> None:
    """Ask the window of the page that made ``call`` to offer the sign-in."""
    parent = call.parent()
    while parent is not None and not isinstance(parent, QWidget):
        parent = parent.parent()
    if isinstance(parent, QWidget):
        offer = getattr(parent.window(), "offer_sign_in", None)
        if callable(offer):
            offer(str(error))


def _cancel_all(tickets: set[_Ticket]) -> None:
    for ticket in tickets:
        ticket.cancelled = True
