"""StatusLine: a page says whether its table is loading, how fresh it is, and
why a load failed, in red and in words."""

from __future__ import annotations

from datetime import datetime

import pytest
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QVBoxLayout, QWidget

from console.theme import style_sheet
from console.widgets.status_line import LoadState, StatusLine


@pytest.fixture
def page(qtbot) -> QWidget:
    widget = QWidget()
    widget.setStyleSheet(style_sheet("light"))
    qtbot.addWidget(widget)
    widget.show()
    return widget


def line_on(page: QWidget, clock: list[datetime]) -> StatusLine:
    line = StatusLine(now=lambda: clock[0])
    QVBoxLayout(page).addWidget(line)
    return line


def text_colour(line: StatusLine) -> tuple[int, int, int]:
    line.ensurePolished()
    colour = line.palette().color(QPalette.ColorRole.WindowText)
    return colour.red(), colour.green(), colour.blue()


def test_loading_then_updated_with_the_time(page) -> None:
    clock = [datetime(2026, 12, 4, 12, 3, 4)]
    line = line_on(page, clock)
    assert line.isHidden()  # nothing said yet, no empty gap
    line.loading()
    assert (line.text(), line.state, line.isVisible()) == ("Loading…", LoadState.LOADING, True)
    line.updated("42 devices")
    assert line.text() == "Updated 12:03:04 · 42 devices"
    assert line.state is LoadState.UPDATED
    assert line.last_updated == clock[0]
    clock[0] = datetime(2026, 12, 4, 12, 5, 0)
    line.updated()
    assert line.text() == "Updated 12:05:00"


def test_an_error_is_red_and_says_what_failed(page) -> None:
    clock = [datetime(2026, 12, 4, 9, 0, 0)]
    line = line_on(page, clock)
    line.updated()
    calm = text_colour(line)
    line.failed(ConnectionError("database unreachable"))
    assert line.text() == "Could not load: database unreachable"
    assert line.state is LoadState.FAILED and line.property("role") == "error"
    red, green, blue = text_colour(line)
    assert red > 150 and red > 2 * green and red > 2 * blue, (red, green, blue)
    assert (red, green, blue) != calm
    assert line.toolTip() == "Last updated 09:00:00"  # how old the table still shown is
    line.loading()
    assert line.property("role") == "secondary" and line.toolTip() == ""


def test_an_error_without_a_message_names_its_kind(page) -> None:
    line = line_on(page, [datetime(2026, 1, 1)])
    line.failed(TimeoutError(), doing="Could not verify")
    assert line.text() == "Could not verify: TimeoutError"
    line.failed("Since: not a date", doing="")
    assert line.text() == "Since: not a date"


def test_clear_hides_and_a_lone_line_never_becomes_a_window(qtbot) -> None:
    line = StatusLine()
    qtbot.addWidget(line)
    line.loading()
    assert not line.isVisible()  # no parent yet: it must not pop up on its own
    line.clear()
    assert line.text() == "" and line.state is LoadState.IDLE
