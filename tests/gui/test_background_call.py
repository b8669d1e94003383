"""BackgroundCall delivers only what a page can still use: results for a page
that was closed meanwhile are dropped (a live window closes pages while
queries run), and with a key only the newest call's answer is painted (a
person clicking through devices sees the last one, not a slower older one)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import shiboken6
from PySide6.QtCore import QThread
from PySide6.QtWidgets import QLabel, QWidget

from console.widgets import background
from console.widgets.background import BackgroundCall


def _settle(qtbot) -> None:
    """Every worker finished and every queued answer handled on the GUI thread."""
    background.pool().waitForDone(10_000)
    qtbot.waitUntil(lambda: not background._IN_FLIGHT, timeout=10_000)


def _blocked(value: object, release: threading.Event, ran: list[object] | None = None):
    def fn() -> object:
        assert release.wait(10)
        if ran is not None:
            ran.append(value)
        return value

    return fn


@pytest.fixture
def page(qtbot) -> QWidget:
    widget = QWidget()
    qtbot.addWidget(widget)
    return widget


@pytest.fixture
def one_worker() -> Iterator[None]:
    """One worker thread, so a second call queues behind the first."""
    pool = background.pool()
    pool.waitForDone(10_000)
    before = pool.maxThreadCount()
    pool.setMaxThreadCount(1)
    yield
    pool.waitForDone(10_000)
    pool.setMaxThreadCount(before)


def test_result_reaches_a_live_page(qtbot, page) -> None:
    call = BackgroundCall(page)
    got: list[object] = []
    call.start(lambda: 42, got.append, got.append)
    qtbot.waitUntil(lambda: got == [42], timeout=10_000)


def test_calls_without_a_key_are_all_delivered(qtbot, page) -> None:
    call = BackgroundCall(page)
    got: list[object] = []
    for n in range(3):
        call.start(lambda n=n: n, got.append, got.append)
    _settle(qtbot)
    assert sorted(got) == [0, 1, 2]


def test_late_result_for_a_deleted_page_is_dropped(qtbot) -> None:
    page = QWidget()
    label = QLabel(page)
    call = BackgroundCall(page)
    release = threading.Event()
    delivered: list[object] = []

    def slow() -> str:
        release.wait(10)
        return "late"

    def show(text: object) -> None:
        delivered.append(text)
        label.setText(str(text))  # would raise: the C++ label is gone

    call.start(slow, show, delivered.append)
    page.deleteLater()
    qtbot.waitUntil(lambda: not shiboken6.isValid(label), timeout=10_000)
    release.set()  # if the job had not started, it is not run at all
    _settle(qtbot)
    assert delivered == []


class _Panel(QLabel):
    """A widget whose bound method is the callback, deleted on its own."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.shown: list[object] = []

    def show_result(self, value: object) -> None:
        self.shown.append(value)
        self.setText(str(value))  # would raise once the C++ label is gone


def test_a_deleted_callback_owner_is_not_called_back(qtbot, page) -> None:
    call = BackgroundCall(page)  # the page stays open
    panel = _Panel(page)
    shown = panel.shown
    release = threading.Event()
    call.start(_blocked("late", release), panel.show_result, panel.show_result)
    panel.deleteLater()
    qtbot.waitUntil(lambda: not shiboken6.isValid(panel), timeout=10_000)
    release.set()
    _settle(qtbot)
    assert shown == []


def test_a_superseded_result_is_never_delivered(qtbot, page) -> None:
    call = BackgroundCall(page)
    shown: list[object] = []
    first, second = threading.Event(), threading.Event()
    call.start(_blocked("device-3", first), shown.append, shown.append, key="details")
    call.start(_blocked("device-10", second), shown.append, shown.append, key="details")
    assert call.is_running("details")
    first.set()  # the older, slower answer arrives first: it must not be painted
    second.set()
    _settle(qtbot)
    assert shown == ["device-10"]
    assert not call.is_running("details")


def test_a_superseded_result_arriving_last_is_dropped_too(qtbot, page) -> None:
    call = BackgroundCall(page)
    shown: list[object] = []
    first, second = threading.Event(), threading.Event()
    call.start(_blocked("old", first), shown.append, shown.append, key="list")
    call.start(_blocked("new", second), shown.append, shown.append, key="list")
    second.set()
    qtbot.waitUntil(lambda: shown == ["new"], timeout=10_000)
    first.set()
    _settle(qtbot)
    assert shown == ["new"]


def test_keys_are_independent(qtbot, page) -> None:
    call = BackgroundCall(page)
    shown: list[object] = []
    call.start(lambda: "metrics", shown.append, shown.append, key="metrics")
    call.start(lambda: "history", shown.append, shown.append, key="history")
    _settle(qtbot)
    assert sorted(shown) == ["history", "metrics"]


def test_a_superseded_call_still_queued_does_not_run(qtbot, page, one_worker) -> None:
    call = BackgroundCall(page)
    release = threading.Event()
    ran: list[object] = []
    shown: list[object] = []
    call.start(_blocked("busy", release, ran), shown.append, shown.append)
    call.start(_blocked("old", release, ran), shown.append, shown.append, key="k")
    call.start(_blocked("new", release, ran), shown.append, shown.append, key="k")
    release.set()
    _settle(qtbot)
    assert ran == ["busy", "new"]
    assert shown == ["busy", "new"]


def test_the_newest_error_still_arrives(qtbot, page) -> None:
    call = BackgroundCall(page)
    results: list[object] = []
    errors: list[BaseException] = []
    release = threading.Event()

    def stale_failure() -> None:
        release.wait(10)
        raise RuntimeError("stale")

    def fresh_failure() -> None:
        raise ConnectionError("database unreachable")

    call.start(stale_failure, results.append, errors.append, key="list")
    call.start(fresh_failure, results.append, errors.append, key="list")
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=10_000)
    release.set()
    _settle(qtbot)
    assert results == []
    assert [str(e) for e in errors] == ["database unreachable"]
    assert isinstance(errors[0], ConnectionError)


def test_cancel_drops_the_answer_in_flight(qtbot, page) -> None:
    call = BackgroundCall(page)
    shown: list[object] = []
    release = threading.Event()
    call.start(_blocked("selected", release), shown.append, shown.append, key="details")
    call.start(_blocked("saved", release), shown.append, shown.append)
    call.cancel("details")  # the selection was cleared
    assert not call.is_running("details")
    assert call.is_running()
    release.set()
    _settle(qtbot)
    assert shown == ["saved"]
    assert not call.is_running()


def test_cancel_everything(qtbot, page) -> None:
    call = BackgroundCall(page)
    shown: list[object] = []
    release = threading.Event()
    call.start(_blocked("a", release), shown.append, shown.append, key="a")
    call.start(_blocked("b", release), shown.append, shown.append)
    call.cancel()
    release.set()
    _settle(qtbot)
    assert shown == []


def test_a_quick_call_is_answered_while_slow_ones_hold_more_workers_than_cores(
    qtbot, page,
) -> None:
    """A sandbox answering late on two calls must not starve a third page's
    query: on a two-core laptop Qt's global pool has two threads, and the
    deployment wizard's plan once waited 20 s behind two slow calls."""
    release = threading.Event()
    slow = BackgroundCall(page)
    quick = BackgroundCall(page)
    got: list[object] = []
    try:
        for n in range(QThread.idealThreadCount()):  # what starves Qt's global pool
            slow.start(_blocked(n, release), lambda _v: None, lambda _e: None)
        quick.start(lambda: "plan", got.append, got.append)
        qtbot.waitUntil(lambda: got == ["plan"], timeout=5_000)
    finally:
        release.set()
        _settle(qtbot)
