"""The firmware import dialog shows all of its text: no check box or label
cut at the dialog's edge, at its opening size and with a long error.

SMARTIOT_SCREENSHOTS=1 under xvfb-run writes
docs/screenshots/firmware-import-dialog-{light,dark}.png."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QWidget

from console.theme import apply_theme
from core.context import AppContext
from core.model.roles import Actor, Role
from plugins.firmware.widgets.common import show_message

SHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
ENGINEER = Actor("erin", Role.ENGINEER)
S3_ERROR = ("Could not import: access denied to the bucket smartiot-firmware-dev-eu-west-1 "
            "(s3:PutObject on firmware/pump/9.1.0.bin); ask an admin to grant your role "
            "upload rights, then import the same file again: the parts sent stay and the "
            "upload resumes from them.")


def _cut(dialog: QWidget) -> list[str]:
    """Texts that do not fit their widget: a button or check box narrower than
    its text, a wrapping label shorter than its wrapped text."""
    cut = []
    for w in dialog.findChildren(QWidget):
        if not w.isVisible():
            continue
        if isinstance(w, QAbstractButton) and w.text():
            if w.width() < w.sizeHint().width():
                cut.append(f"{w.text()!r}: {w.width()} < {w.sizeHint().width()} px")
        elif isinstance(w, QLabel) and w.text():
            if w.wordWrap():
                if w.height() < w.heightForWidth(w.width()):
                    cut.append(f"{w.text()!r}: {w.height()} < {w.heightForWidth(w.width())} px")
            elif w.width() < w.sizeHint().width():
                cut.append(f"{w.text()!r}: {w.width()} < {w.sizeHint().width()} px")
    return cut


def _overlapping(dialog: QWidget) -> list[str]:
    """Pairs of the dialog's own widgets drawn over each other (a layout
    squeezed below its minimum when a long message appeared)."""
    shown = [w for w in dialog.findChildren(QWidget) if w.parent() is dialog and w.isVisible()]
    return [f"{a.__class__.__name__} {a.objectName() or getattr(a, 'text', str)()!r} / "
            f"{b.__class__.__name__}"
            for i, a in enumerate(shown) for b in shown[i + 1:]
            if a.geometry().intersects(b.geometry())]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_text_of_the_import_dialog_fits(qtbot: Any, theme: str,
                                              make_context: Callable[..., AppContext]) -> None:
    """With the console's style sheet, whose padding made the old check box
    wider than the dialog gave it ("…newest in the libra")."""
    from plugins.firmware.widgets.import_dialog import ImportDialog

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    apply_theme(app, theme)
    parent = QWidget()  # as on the Firmware page: a child dialog opened window-modal
    qtbot.addWidget(parent)
    parent.resize(1400, 860)
    parent.show()
    dialog = ImportDialog(make_context(actor=ENGINEER), ["environmental", "pump"], parent)
    dialog.open()
    qtbot.waitExposed(dialog)
    qtbot.wait(50)  # the layout settles
    assert _cut(dialog) == [] and _overlapping(dialog) == []
    assert "older version" in dialog.allow_downgrade.text()
    assert dialog.downgrade_note.isVisible()

    long_path = "/home/erin/builds/" + "pump-release-candidate/" * 4 + "pump-9.1.0.bin"
    dialog.path.setText(long_path)
    assert dialog.path.toolTip() == long_path  # scrolled in its box, whole on hover
    show_message(dialog.message, S3_ERROR)
    qtbot.waitUntil(lambda: _cut(dialog) == [] and _overlapping(dialog) == [], timeout=5_000)
    screen = dialog.screen().availableGeometry()
    assert dialog.width() <= max(screen.width(), 800)  # wraps instead of widening
    if os.environ.get("SMARTIOT_SCREENSHOTS"):
        dialog.grab().save(str(SHOTS / f"firmware-import-dialog-{theme}.png"))
    apply_theme(app, "light")  # the suite's other pages expect the default theme
