"""Worker results for a page that was closed meanwhile are dropped, not delivered
into deleted widgets (a live window closes pages while queries run)."""

from __future__ import annotations

import threading

import shiboken6
from PySide6.QtWidgets import QLabel, QWidget

from console.widgets.background import BackgroundCall


def test_result_reaches_a_live_page(qtbot) -> None:
    page = QWidget()
    qtbot.addWidget(page)
    call = BackgroundCall(page)
    got: list[object] = []
    call.start(lambda: 42, got.append, got.append)
    qtbot.waitUntil(lambda: got == [42], timeout=10_000)


def test_late_result_for_a_deleted_page_is_dropped(qtbot) -> None:
    page = QWidget()
    label = QLabel(page)
    call = BackgroundCall(page)
    release = threading.Event()
    finished = threading.Event()
    delivered: list[object] = []

    def slow() -> str:
        release.wait(10)
        finished.set()
        return "late"

    def show(text: object) -> None:
        delivered.append(text)
        label.setText(str(text))  # would raise: the C++ label is gone

    call.start(slow, show, delivered.append)
    page.deleteLater()
    qtbot.waitUntil(lambda: not shiboken6.isValid(label), timeout=10_000)
    release.set()
    assert finished.wait(10)
    qtbot.wait(200)  # let the queued result arrive on the GUI thread
    assert delivered == []
