"""The device detail's sparkline is a widget that draws one path: what a
person sees in it, read from its pixels (the line rises where the values
rise, a silence is a hole, no data is a blank card), and a burst of updates
draws once."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage

from console.theme import current_colors
from plugins.devices.widgets.sparkline import Sparkline

pytestmark = pytest.mark.gui

T0_MS = 1_780_000_000_000


def _shown(qtbot, ts_ms, values) -> tuple[Sparkline, QImage]:
    spark = Sparkline()
    qtbot.addWidget(spark)
    spark.resize(200, 34)
    spark.show()
    qtbot.waitExposed(spark)
    spark.set_series(np.asarray(ts_ms, dtype=np.int64), np.asarray(values, dtype=float))
    return spark, spark.grab().toImage()


def _line_rows(image: QImage, column: int) -> list[int]:
    """Rows of ``column`` the line covers (antialiased: at least half way from
    the card's colour to the line's)."""
    accent, surface = QColor(current_colors().accent), QColor(current_colors().surface)

    def far(c: QColor) -> int:
        return (abs(c.red() - surface.red()) + abs(c.green() - surface.green())
                + abs(c.blue() - surface.blue()))

    return [row for row in range(image.height())
            if far(image.pixelColor(column, row)) * 2 >= far(accent)]


def test_a_rising_series_is_drawn_low_on_the_left_and_high_on_the_right(qtbot) -> None:
    ts = [T0_MS + i * 1000 for i in range(60)]
    _spark, image = _shown(qtbot, ts, np.linspace(10.0, 20.0, 60))
    left, right = _line_rows(image, 3), _line_rows(image, 196)
    assert left and right
    assert min(left) > max(right)  # screen rows grow downwards
    assert max(left) <= image.height() - 1 and min(right) >= 0


def test_a_silence_is_a_hole_in_the_line(qtbot) -> None:
    ts = [T0_MS + i * 1000 for i in range(30)] + [T0_MS + 300_000 + i * 1000 for i in range(30)]
    _spark, image = _shown(qtbot, ts, [15.0] * 60)
    assert _line_rows(image, 5) and _line_rows(image, 195)
    assert all(not _line_rows(image, col) for col in range(40, 160, 10))


def test_no_readings_is_a_blank_card(qtbot) -> None:
    _spark, image = _shown(qtbot, [], [])
    assert not any(_line_rows(image, col) for col in range(0, 200, 5))
    assert image.pixelColor(100, 17) == QColor(current_colors().surface)


def test_a_burst_of_updates_makes_the_path_once(qtbot, monkeypatch) -> None:
    from plugins.devices.widgets import sparkline as module

    made = []
    real = module.line_path
    monkeypatch.setattr(module, "line_path", lambda *a: made.append(1) or real(*a))
    now_s = module.utcnow().timestamp()
    spark, _image = _shown(qtbot, [int((now_s - 60 + i) * 1000) for i in range(50)],
                           [1.0] * 50)
    made.clear()
    for i in range(12):  # a message's metrics, or a backlog of messages
        spark.append([(now_s - 5 + i * 0.1, float(i))])
    assert spark.point_count() == 62
    spark.grab()  # a paint
    spark.grab()  # another, nothing new: the path is kept
    assert made == [1]
