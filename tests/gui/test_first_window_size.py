"""The first window's size: most of a large screen (the devices list then
shows its names and every column), the default on a small one."""

from __future__ import annotations

from console.main_window import DEFAULT_SIZE, LARGEST_FIRST_SIZE, first_size


def test_a_full_hd_screen_gets_most_of_it() -> None:
    assert first_size((1920, 1040)) == (1632, 884)


def test_a_very_large_screen_gets_no_more_than_anyone_reads() -> None:
    assert first_size((3840, 2100)) == LARGEST_FIRST_SIZE


def test_a_small_or_unknown_screen_gets_the_default() -> None:
    assert first_size((1366, 728)) == DEFAULT_SIZE
    assert first_size((0, 0)) == DEFAULT_SIZE


def test_the_window_opens_at_that_size(make_window, make_context) -> None:
    from PySide6.QtWidgets import QApplication

    screen = QApplication.primaryScreen().availableGeometry()
    window = make_window(make_context())
    assert (window.width(), window.height()) == first_size((screen.width(), screen.height()))
