"""Spin boxes show real up/down arrows in both themes.

Once the sheet styles a QSpinBox's frame, Qt stops drawing the native arrow
buttons; without subcontrol rules the buttons came out as stray "⌐" glyphs.
The arrows are the theme's chevrons, drawn in the theme's icon colour."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication, QDoubleSpinBox, QSpinBox

from console.theme import apply_theme, colors

pytestmark = pytest.mark.gui


def _near(a: QColor, b: QColor, tolerance: int = 40) -> bool:
    return all(abs(x - y) <= tolerance for x, y in (
        (a.red(), b.red()), (a.green(), b.green()), (a.blue(), b.blue())))


def _icon_rows(image: QImage, icon: QColor, x0: int) -> dict[int, int]:
    """Width (in pixels) of the icon colour on each row of the button strip
    right of ``x0``, for the rows that have any."""
    widths: dict[int, int] = {}
    for y in range(image.height()):
        xs = [x for x in range(x0, image.width()) if _near(image.pixelColor(x, y), icon)]
        if xs:
            widths[y] = max(xs) - min(xs) + 1
    return widths


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("kind", [QSpinBox, QDoubleSpinBox])
def test_spin_box_arrows_are_themed_chevrons(qtbot: Any, theme: str, kind: type) -> None:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    apply_theme(app, theme)
    try:
        box = kind()
        qtbot.addWidget(box)
        box.setRange(0, 100)
        box.setValue(50)  # both directions possible: both arrows drawn
        box.resize(160, 34)
        box.show()
        qtbot.waitExposed(box)
        image = box.grab().toImage()
        icon = QColor(colors(theme).icon)
        rows = _icon_rows(image, icon, image.width() - 20)
        middle = image.height() / 2
        up = [rows[y] for y in sorted(rows) if y < middle]
        down = [rows[y] for y in sorted(rows) if y > middle]
        assert len(up) >= 3, "no up arrow in the theme's icon colour"
        assert len(down) >= 3, "no down arrow in the theme's icon colour"
        # Chevrons: "^" widens downwards from its apex, "v" narrows towards it.
        assert up[0] < up[-1], f"the up arrow is not a chevron: row widths {up}"
        assert down[0] > down[-1], f"the down arrow is not a chevron: row widths {down}"
    finally:
        apply_theme(app, "light")
